/** Keyboard rules shared by the screens. */

export interface EnterKey {
  key: string;
  shiftKey: boolean;
  /** 229 is the keyCode browsers give a key that an IME (Korean input) took */
  keyCode: number;
  nativeEvent: { isComposing?: boolean };
}

/**
 * Whether Enter sends a message: not with Shift (a new line), and never while an IME is composing.
 * In Korean input the Enter that ends a syllable's composition is not a send: Chromium and Firefox
 * mark it `isComposing`, Safari gives it keyCode 229 after `compositionend`.
 */
export function sendsOnEnter(e: EnterKey): boolean {
  return e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing && e.keyCode !== 229;
}

/**
 * For a form's onKeyDown: the Enter that ends an IME composition (Korean input) in one of its
 * one-line fields never submits the form half-typed. (A text area's Enter submits nothing.)
 */
export function holdImeEnter(e: EnterKey & { target: unknown; preventDefault(): void }): void {
  const field = e.target as { tagName?: string } | null;
  if (field?.tagName !== "INPUT") return;
  if (e.key === "Enter" && (e.nativeEvent.isComposing || e.keyCode === 229)) e.preventDefault();
}
