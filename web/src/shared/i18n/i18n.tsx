/** Korean and English: Korean by default when the browser prefers it, switchable, remembered. */

import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { en, type MessageKey } from "./en";
import { ko } from "./ko";

export type Lang = "ko" | "en";
const DICTIONARIES: Record<Lang, Record<MessageKey, string>> = { en, ko };
const KEY = "parley.lang";

export function preferredLang(languages: readonly string[] = navigator.languages ?? [navigator.language],
                              stored: string | null = localStorage.getItem(KEY)): Lang {
  if (stored === "ko" || stored === "en") return stored;
  for (const tag of languages) {
    const base = tag.toLowerCase().split("-")[0];
    if (base === "ko") return "ko";
    if (base === "en") return "en";
  }
  return "en";
}

export type Vars = Record<string, string | number>;

export function translate(lang: Lang, key: MessageKey, vars?: Vars): string {
  const template = DICTIONARIES[lang][key] ?? en[key] ?? key;
  return vars ? template.replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? `{${name}}`)) : template;
}

interface I18n {
  lang: Lang;
  setLang(lang: Lang): void;
  t(key: MessageKey, vars?: Vars): string;
  /** The name of an API value (`label("topic", "travel")`), or the value itself when it has none. */
  label(group: string, value: string): string;
  /** Numbers and dates in the interface language. */
  formatDate(value: string | Date, withTime?: boolean): string;
  formatNumber(value: number, digits?: number): string;
}

const Context = createContext<I18n | null>(null);

export function I18nProvider({ children, initial }: { children: ReactNode; initial?: Lang }) {
  const [lang, setLangState] = useState<Lang>(() => initial ?? preferredLang());
  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);
  const setLang = useCallback((next: Lang) => {
    localStorage.setItem(KEY, next);
    setLangState(next);
  }, []);
  const value = useMemo<I18n>(() => {
    const locale = lang === "ko" ? "ko-KR" : "en-US";
    return {
      lang,
      setLang,
      t: (key, vars) => translate(lang, key, vars),
      label: (group, value) => {
        const key = `${group}.${value}` as MessageKey;
        return key in en ? translate(lang, key) : value;
      },
      formatDate: (v, withTime = true) =>
        new Date(v).toLocaleString(locale, withTime
          ? { dateStyle: "medium", timeStyle: "short" } : { dateStyle: "medium" }),
      formatNumber: (v, digits = 0) =>
        v.toLocaleString(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits }),
    };
  }, [lang, setLang]);
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export function useI18n(): I18n {
  const value = useContext(Context);
  if (!value) throw new Error("useI18n outside I18nProvider");
  return value;
}

export type { MessageKey };
