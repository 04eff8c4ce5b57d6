import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api, unwrap } from "../shared/api/client";
import { errorKind } from "../shared/api/errors";
import { useI18n } from "../shared/i18n/i18n";
import { ErrorMessage } from "../shared/ui/ErrorMessage";
import { useTitle } from "../shared/ui/useTitle";

type Engine = "anthropic" | "bedrock" | "offline";
const ENGINES = ["", "anthropic", "bedrock", "offline"] as const;

export default function ConversationsPage() {
  const { t, label, formatDate } = useI18n();
  useTitle(t("conversations.title"));
  const [engine, setEngine] = useState<Engine | "">("");
  const [open, setOpen] = useState<string | null>(null);
  const list = useInfiniteQuery({
    queryKey: ["conversations", engine],
    queryFn: ({ pageParam }) => unwrap(api().GET("/conversations", {
      params: { query: { limit: 20, cursor: pageParam ?? undefined, engine: engine || undefined } },
    })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.nextCursor ?? null,
  });
  const items = list.data?.pages.flatMap((p) => p.items) ?? [];
  // A cursor the API no longer takes (the list changed under it): start again from the newest.
  const client = useQueryClient();
  const stale = errorKind(list.error) === "staleCursor";
  useEffect(() => {
    if (stale) void client.resetQueries({ queryKey: ["conversations", engine] });
  }, [stale, client, engine]);
  return (
    <>
      <h1>{t("conversations.title")}</h1>
      <div className="field inline">
        <label htmlFor="engine">{t("conversations.engine")}</label>
        <select id="engine" value={engine} onChange={(e) => setEngine(e.target.value as Engine | "")}>
          {ENGINES.map((e) => <option key={e} value={e}>{e ? label("engine", e) : t("conversations.all")}</option>)}
        </select>
      </div>
      <ErrorMessage error={list.error} onRetry={() => void list.refetch()} />
      {list.isPending && <p role="status">{t("app.loading")}</p>}
      {list.isSuccess && items.length === 0 && <p>{t("conversations.empty")}</p>}
      <ul className="list">
        {items.map((c) => (
          <li key={c.conversationId} className="card">
            <button type="button" className="link" aria-expanded={open === c.conversationId}
              onClick={() => setOpen(open === c.conversationId ? null : c.conversationId)}>
              <strong>{c.title}</strong>
            </button>
            <p className="muted small">
              {formatDate(c.updatedAt)} · {label("engine", c.engine)} · {t("conversations.turns", { n: c.turnCount })}
            </p>
            {open === c.conversationId && <Conversation id={c.conversationId} onDeleted={() => setOpen(null)} />}
          </li>
        ))}
      </ul>
      {list.hasNextPage && (
        <button type="button" onClick={() => void list.fetchNextPage()} disabled={list.isFetchingNextPage}>{t("action.loadMore")}</button>
      )}
    </>
  );
}

function Conversation({ id, onDeleted }: { id: string; onDeleted: () => void }) {
  const { t, formatDate } = useI18n();
  const client = useQueryClient();
  const detail = useQuery({
    queryKey: ["conversation", id],
    queryFn: () => unwrap(api().GET("/conversations/{conversationId}", { params: { path: { conversationId: id } } })),
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api().DELETE("/conversations/{conversationId}", { params: { path: { conversationId: id } } })),
    onSuccess: () => {
      onDeleted();
      void client.invalidateQueries({ queryKey: ["conversations"] });
    },
  });
  return (
    <div className="conversation">
      <ErrorMessage error={detail.error ?? remove.error} />
      {detail.data?.exchanges.map((x) => (
        <article key={x.turn} className="exchange">
          <h3 className="small">{t("conversations.turn", { n: x.turn })} · {formatDate(x.createdAt)}</h3>
          <p className="muted small">{t("conversations.input")}</p>
          <p className="prewrap">{x.input}</p>
          <p className="muted small">{t("conversations.output")}</p>
          <p className="prewrap">{x.output}</p>
        </article>
      ))}
      <button type="button" className="danger" onClick={() => remove.mutate()} disabled={remove.isPending}>
        {t("action.delete")}
      </button>
    </div>
  );
}
