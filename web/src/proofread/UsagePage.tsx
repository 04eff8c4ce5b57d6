import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, unwrap } from "../shared/api/client";
import { useI18n } from "../shared/i18n/i18n";
import { BarChart } from "../shared/ui/charts";
import { ErrorMessage } from "../shared/ui/ErrorMessage";
import { useTitle } from "../shared/ui/useTitle";

export function thisMonth(now = new Date()): string {
  return `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}`;
}

export default function UsagePage() {
  const { t, label, formatNumber, formatDate } = useI18n();
  useTitle(t("usage.title"));
  const [month, setMonth] = useState(thisMonth());
  const usage = useQuery({
    queryKey: ["usage", month],
    queryFn: () => unwrap(api().GET("/usage", { params: { query: { month } } })),
  });
  const u = usage.data;
  const usd = (v: number) => `$${formatNumber(v, 4)}`;
  return (
    <>
      <h1>{t("usage.title")}</h1>
      <div className="field inline">
        <label htmlFor="month">{t("usage.month")}</label>
        <input id="month" type="month" value={month} max={thisMonth()} onChange={(e) => e.target.value && setMonth(e.target.value)} />
        <button type="button" onClick={() => void usage.refetch()}>{t("action.refresh")}</button>
      </div>
      <ErrorMessage error={usage.error} onRetry={() => void usage.refetch()} />
      {usage.isPending && <p role="status">{t("app.loading")}</p>}
      {u && (
        <>
          <dl className="totals card">
            <div><dt>{t("usage.cost")}</dt><dd data-testid="usage-cost">{usd(u.totals.estimatedCostUsd ?? 0)}</dd></div>
            <div><dt>{t("usage.tokens")}</dt><dd>{formatNumber(u.totals.totalTokens ?? 0)}</dd></div>
            <div><dt>{t("usage.characters")}</dt><dd>{formatNumber(u.totals.characters ?? 0)}</dd></div>
            <div><dt>{t("usage.audio")}</dt><dd>{formatNumber(u.totals.audioSeconds ?? 0, 1)}</dd></div>
            <div><dt>{t("usage.events")}</dt><dd data-testid="usage-events">{formatNumber(u.totals.events ?? 0)}</dd></div>
          </dl>
          <p>
            {u.quota.monthlyCostUsd != null
              ? t("usage.quotaCost", { used: usd(u.quota.costUsedUsd), limit: usd(u.quota.monthlyCostUsd) })
              : t("usage.unlimited")}
            {" · "}{t("usage.resets", { date: formatDate(u.quota.resetsAt, false) })}
          </p>
          {u.quota.monthlyCostUsd != null && (
            <meter min={0} max={u.quota.monthlyCostUsd} value={u.quota.costUsedUsd} high={u.quota.monthlyCostUsd * 0.9}
              aria-label={t("usage.quotaLabel")} />
          )}
          {u.quota.exceeded && <p className="alert" role="alert">{t("error.quota")}</p>}
          {u.byEngine.length > 0 ? (
            <>
              <BarChart title={t("usage.byEngine")} bars={u.byEngine.map((e) => ({
                label: label("engine", e.engine), value: e.estimatedCostUsd ?? 0, text: usd(e.estimatedCostUsd ?? 0) }))} />
              <table>
                <caption>{t("usage.byEngine")}</caption>
                <thead><tr>
                  <th scope="col">{t("usage.engine")}</th><th scope="col">{t("usage.events")}</th>
                  <th scope="col">{t("usage.tokens")}</th><th scope="col">{t("usage.characters")}</th>
                  <th scope="col">{t("usage.audio")}</th><th scope="col">{t("usage.cost")}</th>
                </tr></thead>
                <tbody>
                  {u.byEngine.map((e) => (
                    <tr key={e.engine}>
                      <th scope="row">{label("engine", e.engine)}</th><td>{e.events ?? 0}</td>
                      <td>{formatNumber(e.totalTokens ?? 0)}</td><td>{formatNumber(e.characters ?? 0)}</td>
                      <td>{formatNumber(e.audioSeconds ?? 0, 1)}</td><td>{usd(e.estimatedCostUsd ?? 0)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          ) : <p>{t("usage.none")}</p>}
        </>
      )}
    </>
  );
}
