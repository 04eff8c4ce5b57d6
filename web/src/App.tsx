import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { lazy, Suspense, useEffect, useRef, useState, type ReactNode } from "react";
import { Link, Redirect, Route, Switch, useLocation } from "wouter";
import { createApi, setApi } from "./shared/api/client";
import { ApiError } from "./shared/api/errors";
import { createAuth, type Auth } from "./shared/auth/auth";
import { CALLBACK_PATH, completeSignIn } from "./shared/auth/cognito";
import { AppContext } from "./shared/context";
import { loadConfig, type AppConfig } from "./shared/config";
import { I18nProvider, useI18n } from "./shared/i18n/i18n";
import { HomePage } from "./Home";

const PracticePage = lazy(() => import("./practice/PracticePage"));
const SettingsPage = lazy(() => import("./practice/SettingsPage"));
const HistoryPage = lazy(() => import("./practice/HistoryPage"));
const SessionPage = lazy(() => import("./practice/SessionPage"));
const ReportPage = lazy(() => import("./practice/ReportPage"));
const ProgressPage = lazy(() => import("./practice/ProgressPage"));
const EditorPage = lazy(() => import("./proofread/EditorPage"));
const PromptsPage = lazy(() => import("./proofread/PromptsPage"));
const ConversationsPage = lazy(() => import("./proofread/ConversationsPage"));
const UsagePage = lazy(() => import("./proofread/UsagePage"));

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // Retry what may pass (network, 5xx), never a 4xx the retry would only repeat.
      retry: (count, error) => count < 2 && !(error instanceof ApiError && error.status >= 400 && error.status < 500),
      refetchOnWindowFocus: false,
      staleTime: 10_000,
    },
  },
});

export function App() {
  return (
    <I18nProvider>
      <QueryClientProvider client={queryClient}>
        <Boot />
      </QueryClientProvider>
    </I18nProvider>
  );
}

function Boot() {
  const { t } = useI18n();
  const [state, setState] = useState<{ config: AppConfig; auth: Auth } | { error: string } | null>(null);
  useEffect(() => {
    loadConfig()
      .then((config) => {
        const auth = createAuth(config.auth);
        setApi(createApi(config, auth));
        setState({ config, auth });
      })
      .catch((error: unknown) => setState({ error: error instanceof Error ? error.message : String(error) }));
  }, []);
  if (!state) return <p className="boot" role="status">{t("app.loading")}</p>;
  if ("error" in state) {
    return (
      <main className="boot">
        <h1>{t("app.configError")}</h1>
        <p>{state.error}</p>
      </main>
    );
  }
  return (
    <AppContext.Provider value={state}>
      <Shell>
        <Routes auth={state.auth} config={state.config} />
      </Shell>
    </AppContext.Provider>
  );
}

function Routes({ auth, config }: { auth: Auth; config: AppConfig }) {
  const [location] = useLocation();
  if (location === CALLBACK_PATH) return <SignInCallback config={config} />;
  if (!auth.signedIn()) return <SignIn auth={auth} />;
  return (
    <Suspense fallback={<p role="status">{"…"}</p>}>
      <Switch>
        <Route path="/" component={HomePage} />
        <Route path="/practice" component={PracticePage} />
        <Route path="/practice/settings" component={SettingsPage} />
        <Route path="/practice/history" component={HistoryPage} />
        <Route path="/practice/history/:sessionId" component={SessionPage} />
        <Route path="/practice/report/:sessionId" component={ReportPage} />
        <Route path="/practice/progress" component={ProgressPage} />
        <Route path="/proofread" component={EditorPage} />
        <Route path="/proofread/prompts" component={PromptsPage} />
        <Route path="/proofread/history" component={ConversationsPage} />
        <Route path="/proofread/usage" component={UsagePage} />
        <Route path="/usage"><Redirect to="/proofread/usage" /></Route>
        <Route><NotFound /></Route>
      </Switch>
    </Suspense>
  );
}

function NotFound() {
  const { t } = useI18n();
  return (
    <>
      <h1>{t("app.notFound")}</h1>
      <p><Link href="/">{t("nav.home")}</Link></p>
    </>
  );
}

function SignIn({ auth }: { auth: Auth }) {
  const { t } = useI18n();
  const [location] = useLocation();
  return (
    <section className="card narrow">
      <h1>{t("auth.title")}</h1>
      <p>{t("auth.why")}</p>
      <button type="button" className="primary" onClick={() => void auth.signIn(location)}>{t("auth.signIn")}</button>
    </section>
  );
}

function SignInCallback({ config }: { config: AppConfig }) {
  const { t } = useI18n();
  const [, navigate] = useLocation();
  const [error, setError] = useState<string | null>(null);
  const once = useRef(false);
  useEffect(() => {
    if (once.current || config.auth.mode !== "cognito") return;
    once.current = true;
    completeSignIn(config.auth, location.search)
      .then((back) => navigate(back, { replace: true }))
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [config, navigate]);
  return error
    ? <div role="alert"><h1>{t("auth.failed")}</h1><p>{error}</p><Link href="/">{t("nav.home")}</Link></div>
    : <p role="status">{t("auth.completing")}</p>;
}

const PRACTICE_NAV = [
  ["/practice", "nav.session"], ["/practice/settings", "nav.settings"], ["/practice/history", "nav.history"],
  ["/practice/progress", "nav.progress"],
] as const;
const PROOFREAD_NAV = [
  ["/proofread", "nav.editor"], ["/proofread/prompts", "nav.prompts"], ["/proofread/history", "nav.conversations"],
  ["/proofread/usage", "nav.usage"],
] as const;

function Shell({ children }: { children: ReactNode }) {
  const { t, lang, setLang } = useI18n();
  const [location] = useLocation();
  const mainRef = useRef<HTMLElement>(null);
  const first = useRef(true);
  useEffect(() => {
    // After navigating, move focus to the new screen so keyboard and screen-reader users start there.
    if (first.current) {
      first.current = false;
      return;
    }
    mainRef.current?.focus();
  }, [location]);
  const product = location.startsWith("/practice") ? "practice" : location.startsWith("/proofread") ? "proofread" : null;
  const sub = product === "practice" ? PRACTICE_NAV : product === "proofread" ? PROOFREAD_NAV : null;
  return (
    <>
      <a className="skip" href="#main">{t("nav.skip")}</a>
      <header className="top">
        <Link href="/" className="brand">Parley</Link>
        <nav aria-label={t("nav.products")}>
          <ul>
            <li><Link href="/practice" aria-current={product === "practice" ? "page" : undefined}>{t("nav.practiceShort")}</Link></li>
            <li><Link href="/proofread" aria-current={product === "proofread" ? "page" : undefined}>{t("nav.proofreadShort")}</Link></li>
          </ul>
        </nav>
        <button type="button" className="lang" onClick={() => setLang(lang === "ko" ? "en" : "ko")}
          lang={lang === "ko" ? "en" : "ko"}>
          {lang === "ko" ? "English" : "한국어"}
        </button>
      </header>
      {sub && (
        <nav className="sub" aria-label={product === "practice" ? t("nav.practice") : t("nav.proofread")}>
          <ul>
            {sub.map(([href, key]) => (
              <li key={href}><Link href={href} aria-current={location === href ? "page" : undefined}>{t(key)}</Link></li>
            ))}
          </ul>
        </nav>
      )}
      <main id="main" ref={mainRef} tabIndex={-1}>{children}</main>
    </>
  );
}
