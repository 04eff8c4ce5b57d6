import { createContext, useContext } from "react";
import type { Auth } from "./auth/auth";
import type { AppConfig } from "./config";

export const AppContext = createContext<{ config: AppConfig; auth: Auth } | null>(null);

export function useApp(): { config: AppConfig; auth: Auth } {
  const value = useContext(AppContext);
  if (!value) throw new Error("useApp outside the app");
  return value;
}
