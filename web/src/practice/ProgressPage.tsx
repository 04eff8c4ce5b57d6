import { useQuery } from "@tanstack/react-query";
import { Link } from "wouter";
import { api, unwrap } from "../shared/api/client";
import { useI18n } from "../shared/i18n/i18n";
import { LineChart } from "../shared/ui/charts";
import { ErrorMessage } from "../shared/ui/ErrorMessage";
import { useTitle } from "../shared/ui/useTitle";
import { DIMENSIONS } from "./ReportPage";

export default function ProgressPage() {
  const { t, formatDate, formatNumber } = useI18n();
  useTitle(t("progress.title"));
  const progress = useQuery({
    queryKey: ["progress"],
    queryFn: () => unwrap(api().GET("/progress", { params: { query: { limit: 20 } } })),
  });
  const p = progress.data;
  return (
    <>
      <h1>{t("progress.title")}</h1>
      <ErrorMessage error={progress.error} onRetry={() => void progress.refetch()} />
      {progress.isPending && <p role="status">{t("app.loading")}</p>}
      {p && p.sessions.length === 0 && <p>{t("progress.empty")} <Link href="/practice">{t("practice.start")}</Link></p>}
      {p && p.sessions.length > 0 && (
        <>
          <LineChart title={t("progress.chart")} times={p.sessions.map((s) => Date.parse(s.startedAt))}
            tickLabel={(time) => formatDate(new Date(time), false)}
            series={DIMENSIONS.map((d) => ({ name: t(`dim.${d}`), points: p.sessions.map((s) => s[d] ?? null) }))} />
          <table>
            <caption>{t("progress.table")}</caption>
            <thead>
              <tr><th scope="col">{t("progress.date")}</th>{DIMENSIONS.map((d) => <th key={d} scope="col">{t(`dim.${d}`)}</th>)}<th scope="col">CEFR</th></tr>
            </thead>
            <tbody>
              {p.sessions.map((s) => (
                <tr key={s.sessionId}>
                  <th scope="row"><Link href={`/practice/report/${s.sessionId}`}>{formatDate(s.startedAt, false)}</Link></th>
                  {DIMENSIONS.map((d) => <td key={d}>{s[d] ?? "–"}</td>)}
                  <td>{s.cefr}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <ul className="trends">
            {DIMENSIONS.map((d) => {
              const trend = p.trend[d];
              const change = trend?.changePerSession;
              return (
                <li key={d}>{t(`dim.${d}`)}: {change == null ? t("progress.noTrend")
                  : t(change >= 0 ? "progress.up" : "progress.down", { n: formatNumber(Math.abs(change), 2) })}</li>
              );
            })}
          </ul>
        </>
      )}
    </>
  );
}
