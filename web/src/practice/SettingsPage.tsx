import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState, type FormEvent } from "react";
import { api, unwrap, type Schemas } from "../shared/api/client";
import { useI18n } from "../shared/i18n/i18n";
import { ErrorMessage } from "../shared/ui/ErrorMessage";
import { holdImeEnter } from "../shared/ui/keys";
import { useTitle } from "../shared/ui/useTitle";
import { settingsQuery } from "./PracticePage";
import { restTransport, type Voice } from "./transport";

type Settings = Schemas["Settings"];
const ACCENTS = ["US", "UK", "AU", "IN"] as const;
const GENDERS = ["female", "male"] as const;
const LEVELS = ["beginner", "intermediate", "advanced"] as const;
const TOPICS = ["daily", "travel", "business", "interview"] as const;
const RATES = ["slow", "normal", "fast"] as const;
/** The learner's own language, for the tutor's translations (the API takes any language tag). */
const LANGUAGES = ["ko", "ja", "zh", "vi", "th", "id", "es", "pt", "fr", "de", "ru", "ar", "hi", "tr"] as const;

export default function SettingsPage() {
  const { t, label } = useI18n();
  useTitle(t("settings.title"));
  const client = useQueryClient();
  const saved = useQuery(settingsQuery());
  const [form, setForm] = useState<Settings | null>(null);
  const [preview, setPreview] = useState<{ voice: Voice; asked: Settings["gender"]; accent: Settings["accent"] } | null>(null);
  const audio = useRef<HTMLAudioElement>(null);
  useEffect(() => {
    if (saved.data && !form) {
      const { updatedAt: _ignored, ...rest } = saved.data;
      setForm(rest as Settings);
    }
  }, [saved.data, form]);

  const save = useMutation({
    mutationFn: (body: Settings) => unwrap(api().PUT("/settings", { body })),
    onSuccess: (data) => client.setQueryData(["settings"], data),
  });
  const voice = useMutation({
    mutationFn: (s: Settings) => restTransport.voice(
      t("settings.previewLine", { name: s.tutorName ?? "Emma" }), s.accent, s.gender),
    onSuccess: (voice, s) => setPreview({ voice, asked: s.gender, accent: s.accent }),
  });
  useEffect(() => {
    if (preview) audio.current?.play().catch(() => undefined);
  }, [preview]);

  if (saved.error) return <><h1>{t("settings.title")}</h1><ErrorMessage error={saved.error} onRetry={() => void saved.refetch()} /></>;
  if (!form) return <><h1>{t("settings.title")}</h1><p role="status">{t("app.loading")}</p></>;

  const set = <K extends keyof Settings>(key: K, value: Settings[K]) => {
    save.reset();
    setForm({ ...form, [key]: value });
  };
  const select = <K extends keyof Settings>(key: K, group: string, values: readonly string[]) => (
    <div className="field">
      <label htmlFor={`s-${String(key)}`}>{t(`settings.${String(key)}` as never)}</label>
      <select id={`s-${String(key)}`} value={String(form[key])} onChange={(e) => set(key, e.target.value as Settings[K])}>
        {values.map((v) => <option key={v} value={v}>{label(group, v)}</option>)}
      </select>
    </div>
  );
  const check = (key: "showTranslation" | "autoPlayVoice", id: string) => (
    <div className="check">
      <input id={id} type="checkbox" checked={!!form[key]} onChange={(e) => set(key, e.target.checked)} />
      <label htmlFor={id}>{t(`settings.${key}`)}</label>
    </div>
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate(form);
  };
  return (
    <>
      <h1>{t("settings.title")}</h1>
      <form className="card form" onSubmit={submit} onKeyDown={holdImeEnter}>
        {select("accent", "accent", ACCENTS)}
        {select("gender", "gender", GENDERS)}
        {select("level", "level", LEVELS)}
        {select("topic", "topic", TOPICS)}
        <div className="field">
          <label htmlFor="s-tutorName">{t("settings.tutorName")}</label>
          <input id="s-tutorName" value={form.tutorName ?? ""} maxLength={40} required
            onChange={(e) => set("tutorName", e.target.value)} />
        </div>
        {select("speechRate", "rate", RATES)}
        {check("showTranslation", "s-translation")}
        <div className="field">
          <label htmlFor="s-nativeLanguage">{t("settings.nativeLanguage")}</label>
          <select id="s-nativeLanguage" value={form.nativeLanguage ?? "ko"} onChange={(e) => set("nativeLanguage", e.target.value)}>
            {[...new Set([...LANGUAGES, form.nativeLanguage ?? "ko"])].map((v) => <option key={v} value={v}>{label("language", v)}</option>)}
          </select>
        </div>
        {check("autoPlayVoice", "s-autoplay")}
        <div className="row">
          <button type="submit" className="primary" disabled={save.isPending}>{t("action.save")}</button>
          <button type="button" onClick={() => voice.mutate(form)} disabled={voice.isPending}>
            {voice.isPending ? t("settings.previewing") : t("settings.preview")}
          </button>
        </div>
        <p role="status">{save.isSuccess ? t("settings.saved") : ""}</p>
        {preview && (
          <div className="preview">
            <audio ref={audio} controls src={preview.voice.src} aria-label={t("settings.preview")} />
            <p className="small" data-testid="voice-used">
              {t("settings.voiceUsed", { voice: preview.voice.voice, gender: t(`genderWord.${preview.voice.voiceGender}`) })}
            </p>
            {preview.voice.voiceGender !== preview.asked && (
              <p className="note" role="note">
                {t("practice.voiceNote", { accent: label("accent", preview.accent), asked: t(`genderWord.${preview.asked}`),
                  given: t(`genderWord.${preview.voice.voiceGender}`), voice: preview.voice.voice })}
              </p>
            )}
          </div>
        )}
        <ErrorMessage error={save.error ?? voice.error} />
      </form>
    </>
  );
}
