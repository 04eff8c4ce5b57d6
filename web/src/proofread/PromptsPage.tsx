import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api, unwrap, type Schemas } from "../shared/api/client";
import { ApiError } from "../shared/api/errors";
import { useI18n } from "../shared/i18n/i18n";
import { ErrorMessage } from "../shared/ui/ErrorMessage";
import { holdImeEnter } from "../shared/ui/keys";
import { useTitle } from "../shared/ui/useTitle";

type Prompt = Schemas["Prompt"];
type PromptIn = Schemas["PromptIn"];
const EMPTY: PromptIn = { name: "", description: "", systemPrompt: "" };
/** The API's defaults for a prompt's engine settings (EngineSettings). */
const ENGINE_DEFAULTS: Schemas["EngineSettings"] = { model: null, temperature: 0.2, maxTokens: 4096, webSearch: false };
type FileType = Schemas["NewPromptFile"]["contentType"];
const FILE_TYPES: Record<string, FileType> = { txt: "text/plain", md: "text/markdown", markdown: "text/markdown" };

/** UTF-8 bytes of `text`: what the prompt budget counts. */
export function utf8Bytes(text: string): number {
  return new TextEncoder().encode(text).length;
}

/** The file's content type as the API wants it (browsers often report none for .md). */
export function contentTypeOf(file: File): FileType | null {
  const ext = file.name.split(".").pop()?.toLowerCase() ?? "";
  return FILE_TYPES[ext] ?? null;
}

export default function PromptsPage() {
  const { t } = useI18n();
  useTitle(t("prompts.title"));
  const client = useQueryClient();
  const prompts = useQuery({
    queryKey: ["prompts"],
    queryFn: () => unwrap(api().GET("/prompts", { params: { query: { limit: 100 } } })),
  });
  const [editing, setEditing] = useState<Prompt | "new" | null>(null);
  const refresh = () => client.invalidateQueries({ queryKey: ["prompts"] });

  return (
    <>
      <h1>{t("prompts.title")}</h1>
      <p>{t("prompts.intro")}</p>
      <ErrorMessage error={prompts.error} onRetry={() => void prompts.refetch()} />
      {editing === null && (
        <button type="button" className="primary" onClick={() => setEditing("new")}>{t("prompts.new")}</button>
      )}
      {editing !== null && (
        <PromptForm prompt={editing === "new" ? null : editing}
          onDone={(saved) => { void refresh(); setEditing(saved ?? null); }} onCancel={() => setEditing(null)} />
      )}
      {prompts.isPending && <p role="status">{t("app.loading")}</p>}
      {prompts.data && prompts.data.items.length === 0 && <p>{t("prompts.empty")}</p>}
      <ul className="list">
        {prompts.data?.items.map((p) => (
          <li key={p.promptId} className="card">
            <h2>{p.name}</h2>
            {p.description && <p>{p.description}</p>}
            <p className="muted small">{t("prompts.files", { n: p.fileCount })} · <Budget budget={p.budget} /></p>
            <button type="button" onClick={() => setEditing(p)} aria-label={`${t("action.edit")}: ${p.name}`}>{t("action.edit")}</button>
          </li>
        ))}
      </ul>
    </>
  );
}

function Budget({ budget }: { budget: Schemas["PromptBudget"] }) {
  const { t, formatNumber } = useI18n();
  return (
    <span>
      {t("prompts.budget", { used: formatNumber(budget.usedBytes), limit: formatNumber(budget.limitBytes) })}{" "}
      <meter min={0} max={budget.limitBytes} value={budget.usedBytes} high={budget.limitBytes * 0.9}
        aria-label={t("prompts.budgetLabel")} />
    </span>
  );
}

/** The instructions' bytes as they are typed, against what the files leave of the budget. */
function LiveBudget({ id, text, budget }: { id: string; text: string; budget: Schemas["PromptBudget"] | null }) {
  const { t, formatNumber } = useI18n();
  const bytes = utf8Bytes(text);
  if (!budget) return <p id={id} className="muted small">{t("prompts.textBytes", { n: formatNumber(bytes) })}</p>;
  const used = bytes + budget.fileBytes;
  const over = used > budget.limitBytes;
  return (
    <p id={id} className={over ? "small over" : "muted small"} aria-live="polite">
      {t("prompts.liveBudget", { text: formatNumber(bytes), files: formatNumber(budget.fileBytes),
        used: formatNumber(used), limit: formatNumber(budget.limitBytes) })}
      {over && <> {t("prompts.overBudget")}</>}
    </p>
  );
}

/** A prompt's files and budget (one query, shared by the form and its file list). */
const filesQuery = (promptId: string) => ({
  queryKey: ["prompt-files", promptId],
  queryFn: () => unwrap(api().GET("/prompts/{promptId}/files", { params: { path: { promptId } } })),
});

function PromptForm({ prompt, onDone, onCancel }: {
  prompt: Prompt | null; onDone: (saved?: Prompt) => void; onCancel: () => void;
}) {
  const { t } = useI18n();
  const [form, setForm] = useState<PromptIn>(prompt
    ? { name: prompt.name, description: prompt.description, systemPrompt: prompt.systemPrompt, engine: prompt.engine }
    : EMPTY);
  const [confirming, setConfirming] = useState(false);
  const files = useQuery({ ...filesQuery(prompt?.promptId ?? ""), enabled: !!prompt });
  const save = useMutation({
    mutationFn: (body: PromptIn) => prompt
      ? unwrap(api().PUT("/prompts/{promptId}", { params: { path: { promptId: prompt.promptId } }, body }))
      : unwrap(api().POST("/prompts", { body })),
    onSuccess: (saved) => onDone(saved),
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api().DELETE("/prompts/{promptId}", { params: { path: { promptId: prompt!.promptId } } })),
    onSuccess: () => onDone(),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate(form);
  };
  return (
    <section className="card" aria-labelledby="prompt-form">
      <h2 id="prompt-form">{prompt ? t("prompts.edit", { name: prompt.name }) : t("prompts.new")}</h2>
      <form className="form" onSubmit={submit} onKeyDown={holdImeEnter}>
        <div className="field">
          <label htmlFor="p-name">{t("prompts.name")}</label>
          <input id="p-name" required maxLength={100} value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
        </div>
        <div className="field">
          <label htmlFor="p-description">{t("prompts.description")}</label>
          <input id="p-description" maxLength={500} value={form.description ?? ""}
            onChange={(e) => setForm({ ...form, description: e.target.value })} />
        </div>
        <div className="field">
          <label htmlFor="p-system">{t("prompts.systemPrompt")}</label>
          <textarea id="p-system" rows={6} value={form.systemPrompt ?? ""} maxLength={50000}
            aria-describedby="p-system-budget"
            onChange={(e) => setForm({ ...form, systemPrompt: e.target.value })} />
          <LiveBudget id="p-system-budget" text={form.systemPrompt ?? ""} budget={files.data?.budget ?? prompt?.budget ?? null} />
        </div>
        <div className="check">
          <input id="p-web" type="checkbox" checked={!!form.engine?.webSearch} aria-describedby="p-web-note"
            onChange={(e) => setForm({ ...form, engine: { ...ENGINE_DEFAULTS, ...form.engine, webSearch: e.target.checked } })} />
          <label htmlFor="p-web">{t("prompts.webSearch")}</label>
        </div>
        <p id="p-web-note" className="muted small">{t("prompts.webSearchNote")}</p>
        <div className="row">
          <button type="submit" className="primary" disabled={save.isPending}>{t("action.save")}</button>
          <button type="button" className="quiet" onClick={onCancel}>{t("action.close")}</button>
          {prompt && !confirming && <button type="button" className="danger" onClick={() => setConfirming(true)}>{t("action.delete")}</button>}
        </div>
        {confirming && (
          <div className="alert" role="alertdialog" aria-labelledby="confirm-prompt">
            <p id="confirm-prompt">{t("prompts.confirmDelete")}</p>
            <div className="row">
              <button type="button" className="danger" onClick={() => remove.mutate()}>{t("action.delete")}</button>
              <button type="button" className="quiet" onClick={() => setConfirming(false)} autoFocus>{t("action.cancel")}</button>
            </div>
          </div>
        )}
        <ErrorMessage error={save.error ?? remove.error} />
      </form>
      {prompt && <Files prompt={prompt} />}
    </section>
  );
}

function Files({ prompt }: { prompt: Prompt }) {
  const { t, formatNumber } = useI18n();
  const client = useQueryClient();
  const key = filesQuery(prompt.promptId).queryKey;
  const files = useQuery(filesQuery(prompt.promptId));
  const upload = useMutation({
    mutationFn: async (file: File) => {
      const contentType = contentTypeOf(file);
      if (!contentType) throw new ApiError(415, "UNSUPPORTED_MEDIA_TYPE", t("prompts.fileTypes"));
      // Refused before anything is sent when it cannot fit (the server checks again, atomically).
      const budget = files.data?.budget ?? prompt.budget;
      if (file.size > budget.remainingBytes) {
        throw new ApiError(422, "PROMPT_BUDGET_EXCEEDED", "", [{ limitBytes: budget.limitBytes,
          usedBytes: budget.usedBytes + file.size }]);
      }
      const created = await unwrap(api().POST("/prompts/{promptId}/files", {
        params: { path: { promptId: prompt.promptId } },
        body: { fileName: file.name, contentType, sizeBytes: file.size },
      }));
      // Straight to storage through the presigned URL, with exactly the headers it was signed for
      // (the browser sets Content-Length itself).
      const headers = Object.fromEntries(Object.entries(created.upload.headers as Record<string, string>)
        .filter(([k]) => k.toLowerCase() !== "content-length"));
      let put: Response;
      try {
        put = await fetch(created.upload.url, { method: created.upload.method ?? "PUT", headers, body: file });
      } catch (error) {
        throw ApiError.network(error);
      }
      if (!put.ok) throw new ApiError(put.status, "UPLOAD_FAILED", t("prompts.uploadFailed"));
      return created;
    },
    onSettled: () => {
      void client.invalidateQueries({ queryKey: key });
      void client.invalidateQueries({ queryKey: ["prompts"] });
    },
  });
  const remove = useMutation({
    mutationFn: (fileId: string) => unwrap(api().DELETE("/prompts/{promptId}/files/{fileId}", {
      params: { path: { promptId: prompt.promptId, fileId } } })),
    onSettled: () => {
      void client.invalidateQueries({ queryKey: key });
      void client.invalidateQueries({ queryKey: ["prompts"] });
    },
  });
  return (
    <section aria-labelledby="files-heading">
      <h3 id="files-heading">{t("prompts.referenceFiles")}</h3>
      {files.data && <p className="small"><Budget budget={files.data.budget} /></p>}
      <ul className="list">
        {files.data?.items.map((f) => (
          <li key={f.fileId} className="row">
            <span>{f.fileName} ({formatNumber(f.sizeBytes)} B){f.uploaded === false ? ` · ${t("prompts.notUploaded")}` : ""}</span>
            <button type="button" className="quiet" onClick={() => remove.mutate(f.fileId)}
              aria-label={`${t("action.remove")}: ${f.fileName}`}>{t("action.remove")}</button>
          </li>
        ))}
      </ul>
      <div className="field">
        <label htmlFor="p-file">{t("prompts.attach")}</label>
        <input id="p-file" type="file" accept=".txt,.md,.markdown,text/plain,text/markdown"
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) upload.mutate(file);
            e.target.value = "";
          }} />
      </div>
      <p role="status">{upload.isPending ? t("prompts.uploading") : upload.isSuccess ? t("prompts.uploaded") : ""}</p>
      <ErrorMessage error={upload.error ?? remove.error ?? files.error} />
    </section>
  );
}
