import { ApiError, budgetDetails, errorKind, resetsAt, type ErrorKind } from "../api/errors";
import { useI18n, type MessageKey } from "../i18n/i18n";

/** The kinds whose explanation needs nothing from the error: each is told by its message `error.<kind>`. */
const PLAIN = [
  "network", "throttled", "notConfigured", "refused", "tooComplex", "staleCursor", "outdatedApp", "connectionClosed",
  "signIn", "tooLong", "notFound", "conflict",
] as const satisfies readonly ErrorKind[];
type PlainKind = (typeof PLAIN)[number];
const isPlain = (kind: ErrorKind): kind is PlainKind => (PLAIN as readonly ErrorKind[]).includes(kind);
const plainMessage = (kind: PlainKind): MessageKey => `error.${kind}`; // a kind without its message fails to compile

/** What a learner is told about a failed request: what happened, and what to do. */
export function useErrorText(): (error: unknown) => string {
  const { t, formatDate, formatNumber } = useI18n();
  return (error) => {
    const kind = errorKind(error);
    if (isPlain(kind)) return t(plainMessage(kind));
    const retry = error instanceof ApiError && error.retryAfter ? error.retryAfter : null;
    switch (kind) {
      case "quota": {
        const when = resetsAt(error);
        return when ? t("error.quotaUntil", { date: formatDate(when, false) }) : t("error.quota");
      }
      case "unavailable":
        return retry ? t("error.unavailableRetry", { seconds: retry }) : t("error.unavailable");
      case "budget": {
        const d = budgetDetails(error);
        return d ? t("error.budget", { used: formatNumber(d.usedBytes), limit: formatNumber(d.limitBytes) })
          : t("error.budgetPlain");
      }
      case "invalid":
        return error instanceof ApiError ? t("error.invalid", { message: error.message }) : t("error.unknown");
      default:
        return error instanceof ApiError ? t("error.unknownWith", { message: error.message }) : t("error.unknown");
    }
  };
}

/** The explanation of `error` (or `text`, when the screen knows better), with what can be done. */
export function ErrorMessage({ error, text: override, onRetry, onDismiss }: {
  error: unknown; text?: string; onRetry?: () => void; onDismiss?: () => void;
}) {
  const { t } = useI18n();
  const text = useErrorText();
  if (!error) return null;
  return (
    <div className="alert" role="alert" data-kind={errorKind(error)}>
      <p>{override ?? text(error)}</p>
      {(onRetry || onDismiss) && (
        <div className="row">
          {onRetry && <button type="button" onClick={onRetry}>{t("action.tryAgain")}</button>}
          {onDismiss && <button type="button" className="quiet" onClick={onDismiss}>{t("action.dismiss")}</button>}
        </div>
      )}
    </div>
  );
}
