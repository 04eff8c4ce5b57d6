import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useRef, useState } from "react";
import { api, unwrap, type Schemas } from "../shared/api/client";
import { errorKind, fromSocketError } from "../shared/api/errors";
import { useI18n } from "../shared/i18n/i18n";
import { ErrorMessage } from "../shared/ui/ErrorMessage";
import { useTitle } from "../shared/ui/useTitle";
import { useAppSocket, useSocketState } from "../shared/ws/appSocket";
import { applyAccepted, place, segments, type Decision, type Placed } from "./highlights";

type Result = Schemas["ProofreadResult"];

type Phase = "editing" | "streaming" | "reviewing";

/** The copy being edited, kept for the tab's life: a reload or a visit to another screen loses nothing. */
const DRAFT_KEY = "parley.editor.draft";
function savedDraft(): { text: string; promptId: string } {
  try {
    const raw = JSON.parse(sessionStorage.getItem(DRAFT_KEY) ?? "null") as { text?: unknown; promptId?: unknown } | null;
    return { text: typeof raw?.text === "string" ? raw.text : "", promptId: typeof raw?.promptId === "string" ? raw.promptId : "" };
  } catch {
    return { text: "", promptId: "" };
  }
}

export default function EditorPage() {
  const { t, label } = useI18n();
  useTitle(t("editor.title"));
  const ws = useAppSocket();
  const connection = useSocketState(ws);
  const client = useQueryClient();
  useEffect(() => ws.start(), [ws]);

  const prompts = useQuery({
    queryKey: ["prompts"],
    queryFn: () => unwrap(api().GET("/prompts", { params: { query: { limit: 100 } } })),
  });
  const [draft] = useState(savedDraft);
  const [text, setText] = useState(draft.text);
  const [promptId, setPromptId] = useState(draft.promptId);
  useEffect(() => {
    try {
      sessionStorage.setItem(DRAFT_KEY, JSON.stringify({ text, promptId }));
    } catch {
      /* storage full or disabled: the text stays on the screen */
    }
  }, [text, promptId]);
  const [phase, setPhase] = useState<Phase>("editing");
  const [streamed, setStreamed] = useState("");
  const [resending, setResending] = useState(false);
  const [error, setError] = useState<{ error: unknown; text?: string } | null>(null);
  const [result, setResult] = useState<{ input: string; result: Result } | null>(null);
  const [decisions, setDecisions] = useState<Decision[]>([]);
  const [copied, setCopied] = useState(false);
  const [conversationId, setConversationId] = useState<string | null>(null);
  const requestRef = useRef<string | null>(null);
  const resultHeading = useRef<HTMLHeadingElement>(null);

  const proofread = () => {
    const input = text;
    if (!input.trim()) return;
    setPhase("streaming");
    setStreamed("");
    setError(null);
    setResending(false);
    setCopied(false);
    requestRef.current = ws.send<Result>(
      { mode: "proofread", text: input, promptId: promptId || null, conversationId },
      {
        onText: (so) => {
          setResending(false);
          setStreamed(so);
        },
        onResending: () => setResending(true),
        onComplete: (r) => {
          requestRef.current = null;
          setResult({ input, result: r });
          setConversationId(r.conversationId);
          setDecisions(r.corrections.map(() => "pending"));
          setPhase("reviewing");
          void client.invalidateQueries({ queryKey: ["conversations"] });
          void client.invalidateQueries({ queryKey: ["usage"] });
        },
        onError: (e) => {
          requestRef.current = null;
          setPhase("editing"); // the text is still in the editor
          const failure = fromSocketError(e);
          if (errorKind(failure) !== "notFound") {
            setError({ error: failure });
            return;
          }
          // The prompt or the conversation was deleted (say, in another tab): say which, and let the
          // next run go without it.
          void prompts.refetch().then((list) => {
            const promptGone = !!promptId && !list.data?.items.some((p) => p.promptId === promptId);
            if (promptGone) setPromptId("");
            else setConversationId(null);
            setError({ error: failure, text: t(promptGone ? "editor.promptGone" : "editor.conversationGone") });
          });
        },
      },
    );
  };

  useEffect(() => {
    if (phase === "reviewing") resultHeading.current?.focus();
  }, [phase]);

  const placed: Placed[] = useMemo(
    () => (result ? place(result.input, result.result.corrections) : []), [result]);
  const corrected = result ? applyAccepted(result.input, placed, decisions) : "";
  const decide = (index: number, decision: Decision) =>
    setDecisions((d) => d.map((old, i) => (i === index ? decision : old)));

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(corrected);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  };

  const connectionText = {
    connecting: t("editor.connecting"), open: t("editor.connected"), reconnecting: t("editor.reconnecting"),
    closed: t("editor.disconnected"),
  }[connection];

  return (
    <>
      <h1>{t("editor.title")}</h1>
      <p className={`connection ${connection}`} role="status" aria-live="polite">
        <span className="dot" aria-hidden="true" /> {connectionText}
      </p>
      {phase !== "reviewing" && (
        <form className="card form" onSubmit={(e) => { e.preventDefault(); proofread(); }}>
          <div className="field">
            <label htmlFor="prompt">{t("editor.prompt")}</label>
            <select id="prompt" value={promptId} onChange={(e) => setPromptId(e.target.value)}>
              <option value="">{t("editor.defaultPrompt")}</option>
              {prompts.data?.items.map((p) => <option key={p.promptId} value={p.promptId}>{p.name}</option>)}
            </select>
          </div>
          <div className="field">
            <label htmlFor="copy">{t("editor.copy")}</label>
            <textarea id="copy" rows={10} value={text} onChange={(e) => setText(e.target.value)}
              readOnly={phase === "streaming"} maxLength={10000} spellCheck={false} />
            <p className="muted small">{t("editor.count", { n: text.length, max: 10000 })}</p>
          </div>
          <div className="row">
            <button type="submit" className="primary" disabled={phase === "streaming" || !text.trim()}>
              {phase === "streaming" ? t("editor.working") : t("editor.proofread")}
            </button>
            {conversationId && phase === "editing" && (
              <button type="button" className="quiet" onClick={() => setConversationId(null)}>{t("editor.newConversation")}</button>
            )}
          </div>
          <ErrorMessage error={error?.error} text={error?.text} onDismiss={() => setError(null)} />
        </form>
      )}

      {phase === "streaming" && (
        <section className="card" aria-labelledby="live-heading">
          <h2 id="live-heading">{t("editor.live")}</h2>
          <p role="status" className="status">
            <span className="spinner" aria-hidden="true" />{" "}
            {resending ? t("editor.resending") : t("editor.received", { n: streamed.length })}
          </p>
          <pre className="stream" data-testid="stream">{streamed}</pre>
        </section>
      )}

      {phase === "reviewing" && result && (
        <section aria-labelledby="result-heading">
          <h2 id="result-heading" ref={resultHeading} tabIndex={-1}>
            {placed.length === 1 ? t("editor.foundOne") : placed.length ? t("editor.found", { n: placed.length }) : t("editor.clean")}
          </h2>
          <div className="card marked" aria-label={t("editor.marked")} role="region">
            {segments(result.input, placed, decisions).map((seg) =>
              seg.kind === "text" ? <span key={`t${seg.start}`}>{seg.text}</span> : (
                <a key={`c${seg.placed.index}`} href={`#fix-${seg.placed.index}`} className={`fix ${seg.decision}`}
                  data-category={seg.placed.correction.category}
                  aria-label={t("editor.fixLabel", { original: seg.placed.correction.original,
                    replacement: seg.placed.correction.replacement, category: label("category", seg.placed.correction.category) })}>
                  {seg.decision === "accepted" ? seg.placed.correction.replacement : seg.placed.correction.original}
                </a>
              ))}
          </div>
          <ol className="fixes">
            {placed.map((p) => {
              const c = p.correction;
              const d = decisions[p.index] ?? "pending";
              return (
                <li key={p.index} id={`fix-${p.index}`} className={`card fix-item ${d}`} tabIndex={-1}>
                  <p>
                    <span className="badge">{label("category", c.category)}</span>{" "}
                    <del>{c.original || "␣"}</del> → <ins>{c.replacement || t("editor.remove")}</ins>
                  </p>
                  <p className="muted">{c.explanation}</p>
                  <div className="row">
                    <button type="button" aria-pressed={d === "accepted"} onClick={() => decide(p.index, d === "accepted" ? "pending" : "accepted")}
                      aria-label={`${t("editor.accept")}: ${c.original} → ${c.replacement}`}>{t("editor.accept")}</button>
                    <button type="button" className="quiet" aria-pressed={d === "rejected"}
                      onClick={() => decide(p.index, d === "rejected" ? "pending" : "rejected")}
                      aria-label={`${t("editor.reject")}: ${c.original} → ${c.replacement}`}>{t("editor.reject")}</button>
                  </div>
                </li>
              );
            })}
          </ol>
          <div className="row">
            {placed.length > 0 && (
              <button type="button" onClick={() => setDecisions((ds) => ds.map((d) => (d === "rejected" ? d : "accepted")))}>
                {t("editor.acceptAll")}
              </button>
            )}
            <button type="button" onClick={() => { setText(corrected); setPhase("editing"); setResult(null); }}>
              {t("editor.editAgain")}
            </button>
          </div>
          <div className="field">
            <label htmlFor="corrected">{t("editor.corrected")}</label>
            <textarea id="corrected" readOnly rows={8} value={corrected} />
          </div>
          <div className="row">
            <button type="button" className="primary" onClick={() => void copy()}>{t("editor.copyCorrected")}</button>
            <span role="status">{copied ? t("editor.copied") : ""}</span>
          </div>
          <p className="muted small">
            {t("editor.engine", { engine: label("engine", result.result.engine), model: result.result.model })}
            {result.result.skippedFiles.length > 0 && ` · ${t("editor.skipped", { n: result.result.skippedFiles.length })}`}
            {result.result.webSearch && <> · <span data-testid="web-search">{label("webSearch", result.result.webSearch)}</span></>}
          </p>
        </section>
      )}
    </>
  );
}
