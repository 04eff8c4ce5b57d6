import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { Link } from "wouter";
import { api, unwrap } from "../shared/api/client";
import { errorKind } from "../shared/api/errors";
import { useI18n } from "../shared/i18n/i18n";
import { ErrorMessage } from "../shared/ui/ErrorMessage";
import { useTitle } from "../shared/ui/useTitle";

export const PAGE_SIZE = 10;

export default function HistoryPage() {
  const { t, label, formatDate } = useI18n();
  useTitle(t("history.title"));
  const sessions = useInfiniteQuery({
    queryKey: ["sessions"],
    queryFn: ({ pageParam }) => unwrap(api().GET("/sessions", {
      params: { query: { limit: PAGE_SIZE, cursor: pageParam ?? undefined } },
    })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.nextCursor ?? null,
  });
  // A cursor the API no longer takes (the list changed under it): start again from the newest.
  const client = useQueryClient();
  const stale = errorKind(sessions.error) === "staleCursor";
  useEffect(() => {
    if (stale) void client.resetQueries({ queryKey: ["sessions"] });
  }, [stale, client]);
  const items = sessions.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <>
      <h1>{t("history.title")}</h1>
      <ErrorMessage error={sessions.error} onRetry={() => void sessions.refetch()} />
      {sessions.isPending && <p role="status">{t("app.loading")}</p>}
      {sessions.isSuccess && items.length === 0 && <p>{t("history.empty")} <Link href="/practice">{t("practice.start")}</Link></p>}
      <ul className="list">
        {items.map((s) => (
          <li key={s.sessionId} className="card row-card">
            <Link href={`/practice/history/${s.sessionId}`}>
              <strong>{formatDate(s.startedAt)}</strong>
              <span>{label("topic", s.topic)} · {label("level", s.level)} · {label("accent", s.accent)}</span>
              <span className="muted">
                {t("history.turns", { n: s.turnCount ?? 0 })}
                {s.duration != null && <> · {t("history.minutes", { n: Math.max(1, Math.round(s.duration / 60)) })}</>}
                {" · "}{label("status", s.status)}
              </span>
            </Link>
          </li>
        ))}
      </ul>
      {sessions.hasNextPage && (
        <button type="button" onClick={() => void sessions.fetchNextPage()} disabled={sessions.isFetchingNextPage}>
          {t("action.loadMore")}
        </button>
      )}
    </>
  );
}
