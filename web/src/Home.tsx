import { Link } from "wouter";
import { useI18n } from "./shared/i18n/i18n";
import { useTitle } from "./shared/ui/useTitle";

export function HomePage() {
  const { t } = useI18n();
  useTitle(t("home.title"));
  return (
    <>
      <h1>{t("home.title")}</h1>
      <div className="products">
        <section className="card" aria-labelledby="home-practice">
          <h2 id="home-practice">{t("nav.practice")}</h2>
          <p>{t("home.practice")}</p>
          <Link href="/practice" className="button primary">{t("home.startPractice")}</Link>
        </section>
        <section className="card" aria-labelledby="home-proofread">
          <h2 id="home-proofread">{t("nav.proofread")}</h2>
          <p>{t("home.proofread")}</p>
          <Link href="/proofread" className="button primary">{t("home.startProofread")}</Link>
        </section>
      </div>
    </>
  );
}
