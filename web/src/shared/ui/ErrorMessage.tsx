import { ApiError, budgetDetails, errorKind, resetsAt } from "../api/errors";
import { useI18n } from "../i18n/i18n";

/** What a learner is told about a failed request: what happened, and what to do. */
export function useErrorText(): (error: unknown) => string {
  const { t, formatDate, formatNumber } = useI18n();
  return (error) => {
    const kind = errorKind(error);
    const retry = error instanceof ApiError && error.retryAfter ? error.retryAfter : null;
    switch (kind) {
      case "network":
        return t("error.network");
      case "quota": {
        const when = resetsAt(error);
        return when ? t("error.quotaUntil", { date: formatDate(when, false) }) : t("error.quota");
      }
      case "throttled":
        return t("error.throttled");
      case "unavailable":
        return retry ? t("error.unavailableRetry", { seconds: retry }) : t("error.unavailable");
      case "notConfigured":
        return t("error.notConfigured");
      case "refused":
        return t("error.refused");
      case "tooComplex":
        return t("error.tooComplex");
      case "budget": {
        const d = budgetDetails(error);
        return d ? t("error.budget", { used: formatNumber(d.usedBytes), limit: formatNumber(d.limitBytes) })
          : t("error.budgetPlain");
      }
      case "staleCursor":
        return t("error.staleCursor");
      case "outdatedApp":
        return t("error.outdatedApp");
      case "connectionClosed":
        return t("error.connectionClosed");
      case "signIn":
        return t("error.signIn");
      case "tooLong":
        return t("error.tooLong");
      case "notFound":
        return t("error.notFound");
      case "conflict":
        return t("error.conflict");
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
