import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect } from "react";
import { Link } from "wouter";
import { api, unwrap, type Schemas } from "../shared/api/client";
import { ApiError } from "../shared/api/errors";
import { useI18n } from "../shared/i18n/i18n";
import { BarChart } from "../shared/ui/charts";
import { ErrorMessage } from "../shared/ui/ErrorMessage";
import { useTitle } from "../shared/ui/useTitle";

export const DIMENSIONS = ["complexity", "accuracy", "fluency", "pronunciation"] as const;

/** The analysis' own corrections (the learner's words, corrected). The OpenAPI document names two
 * schemas "Correction" (this one and the proofreader's) and keeps the proofreader's, so this shape
 * is written out here. */
interface SpokenCorrection {
  original: string;
  corrected: string;
  why: string;
}

export default function ReportPage({ params }: { params: { sessionId: string } }) {
  const { t } = useI18n();
  useTitle(t("report.title"));
  const sessionId = params.sessionId;
  const start = useMutation({
    mutationFn: () => unwrap(api().POST("/sessions/{sessionId}/analysis", { params: { path: { sessionId } } })),
  });
  const status = useQuery({
    queryKey: ["analysis", sessionId],
    queryFn: () => unwrap(api().GET("/sessions/{sessionId}/analysis", { params: { path: { sessionId } } })),
    enabled: start.isSuccess,
    refetchInterval: (q) => (q.state.data?.status === "running" ? 1000 : false),
    retry: false,
  });
  useEffect(() => {
    if (start.isIdle) start.mutate();
  }, [start]);

  const notEnough = start.error instanceof ApiError && start.error.code === "NOT_ENOUGH_TO_ANALYSE";
  const data = status.data ?? start.data;
  return (
    <>
      <h1>{t("report.title")}</h1>
      {notEnough && (
        <div className="alert" role="alert">
          <p>{t("report.notEnough", { n: 3 })}</p>
          <Link href="/practice" className="button">{t("practice.start")}</Link>
        </div>
      )}
      {!notEnough && <ErrorMessage error={start.error ?? status.error} onRetry={() => start.mutate()} />}
      {(start.isPending || data?.status === "running") && (
        <p role="status" className="status"><span className="spinner" aria-hidden="true" /> {t("report.running")}</p>
      )}
      {data?.status === "failed" && (
        <div className="alert" role="alert">
          <p>{data.error?.reason ?? t("report.failed")}</p>
          <button type="button" onClick={() => start.mutate()}>{t("action.tryAgain")}</button>
        </div>
      )}
      {data?.status === "completed" && data.report && <Report report={data.report} />}
      <p><Link href={`/practice/history/${sessionId}`}>{t("report.script")}</Link> · <Link href="/practice/progress">{t("nav.progress")}</Link></p>
    </>
  );
}

function Report({ report }: { report: Schemas["AnalysisReport"] }) {
  const { t } = useI18n();
  const corrections = report.corrections as unknown as SpokenCorrection[];
  return (
    <>
      <p className="cefr">{t("report.cefr")}: <strong>{report.cefr}</strong></p>
      <BarChart title={t("report.scores")} max={10}
        bars={DIMENSIONS.map((d) => ({ label: t(`dim.${d}`), value: report.scores[d].score,
          text: report.scores[d].score == null ? t("report.notMeasured") : `${report.scores[d].score} / 10` }))} />
      <div className="scores">
        {DIMENSIONS.map((d) => {
          const score = report.scores[d];
          return (
            <section key={d} className="card" aria-labelledby={`dim-${d}`}>
              <h2 id={`dim-${d}`}>{t(`dim.${d}`)}: {score.score == null ? t("report.notMeasured") : `${score.score} / 10`}</h2>
              <p>{score.reason}</p>
              {score.evidence.length > 0 && (
                <dl className="evidence">
                  {score.evidence.map((e) => (
                    <div key={e.metric}><dt>{e.label}</dt><dd>{String(e.value)}</dd></div>
                  ))}
                </dl>
              )}
            </section>
          );
        })}
      </div>
      {corrections.length > 0 && (
        <section>
          <h2>{t("report.corrections")}</h2>
          <ul className="list">
            {corrections.map((c, i) => (
              <li key={i} className="card">
                <p><del lang="en">{c.original}</del> → <ins lang="en">{c.corrected}</ins></p>
                <p className="muted">{c.why}</p>
              </li>
            ))}
          </ul>
        </section>
      )}
      {report.betterVocabulary.length > 0 && (
        <section>
          <h2>{t("report.vocabulary")}</h2>
          <ul className="list">
            {report.betterVocabulary.map((v, i) => (
              <li key={i}>{v.insteadOf ? <><q lang="en">{v.insteadOf}</q> → </> : null}<strong lang="en">{v.suggestion}</strong> — {v.why}</li>
            ))}
          </ul>
        </section>
      )}
      {report.practiseNext.length > 0 && (
        <section>
          <h2>{t("report.next")}</h2>
          <ul>{report.practiseNext.map((p) => <li key={p} lang="en">{p}</li>)}</ul>
        </section>
      )}
    </>
  );
}
