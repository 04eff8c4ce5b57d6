import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useLocation } from "wouter";
import { api, unwrap } from "../shared/api/client";
import { useI18n } from "../shared/i18n/i18n";
import { ErrorMessage } from "../shared/ui/ErrorMessage";
import { useTitle } from "../shared/ui/useTitle";

export default function SessionPage({ params }: { params: { sessionId: string } }) {
  const { t, label, formatDate } = useI18n();
  useTitle(t("session.title"));
  const [, navigate] = useLocation();
  const client = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const sessionId = params.sessionId;
  const session = useQuery({
    queryKey: ["session", sessionId],
    queryFn: () => unwrap(api().GET("/sessions/{sessionId}", { params: { path: { sessionId } } })),
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api().DELETE("/sessions/{sessionId}", { params: { path: { sessionId } } })),
    onSuccess: async () => {
      client.removeQueries({ queryKey: ["session", sessionId] });
      await client.invalidateQueries({ queryKey: ["sessions"] });
      navigate("/practice/history");
    },
  });
  const s = session.data;
  return (
    <>
      <h1>{t("session.title")}</h1>
      <ErrorMessage error={session.error} />
      {s && (
        <>
          <p className="muted">
            {formatDate(s.startedAt)} · {label("topic", s.topic)} · {label("level", s.level)} · {s.tutorName}
          </p>
          <div className="row">
            <Link href={`/practice/report/${sessionId}`} className="button">{t("session.report")}</Link>
            {!confirming && <button type="button" className="danger" onClick={() => setConfirming(true)}>{t("action.delete")}</button>}
          </div>
          {confirming && (
            <div className="alert" role="alertdialog" aria-labelledby="confirm-delete">
              <p id="confirm-delete">{t("session.confirmDelete")}</p>
              <div className="row">
                <button type="button" className="danger" onClick={() => remove.mutate()} disabled={remove.isPending}>
                  {t("session.deleteForGood")}
                </button>
                <button type="button" className="quiet" onClick={() => setConfirming(false)} autoFocus>{t("action.cancel")}</button>
              </div>
            </div>
          )}
          <ErrorMessage error={remove.error} />
          <h2>{t("session.script")}</h2>
          <ol className="transcript">
            {s.messages.map((m) => (
              <li key={m.messageId} className={`turn ${m.role === "assistant" ? "tutor" : "learner"}`}>
                <span className="who">{m.role === "assistant" ? s.tutorName : t("practice.you")}</span>
                <p lang="en">{m.content}</p>
                {m.translation && <p className="translation">{m.translation}</p>}
              </li>
            ))}
          </ol>
        </>
      )}
    </>
  );
}
