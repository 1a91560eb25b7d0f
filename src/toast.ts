import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

/** JupyterLab cuts a notification's message after 140 characters, with an ellipsis. */
export const MAX_TOAST = 140;

export type ToastKind = 'success' | 'info' | 'warning' | 'error';

/**
 * Show the end of an action: `headline` (what happened to what) and `detail` (why, what to
 * do). Text that fits is shown whole; longer text is never cut: the toast says the headline
 * and a Details button shows all of it.
 */
export function toast(
  kind: ToastKind,
  headline: string,
  detail: string | null,
  trans: TranslationBundle
): void {
  const text = detail ? `${headline}: ${detail}` : headline;
  const autoClose = kind === 'success' || kind === 'info' ? 5000 : 10000;
  if (text.length <= MAX_TOAST) {
    Notification.emit(text, kind, { autoClose });
    return;
  }
  Notification.emit(trans.__('%1 (see Details)', headline.slice(0, MAX_TOAST - 20)), kind, {
    autoClose: false,
    actions: [
      {
        label: trans.__('Details'),
        caption: trans.__('Show the whole message'),
        callback: () =>
          void showDialog({
            title: headline,
            body: text, // a string body is shown as text, never HTML
            buttons: [Dialog.okButton({ label: trans.__('Close') })]
          })
      }
    ]
  });
}

/** `reason. hint` of a refused action, from the server's panel fields, else its message. */
export function explain(error: unknown): string {
  const e = error as { message?: string; reason?: string; panelHint?: string; hint?: string };
  const reason = (e.reason ?? e.message ?? String(error)).replace(/\.$/, '');
  const hint = e.reason === undefined ? withoutCommands(e.hint) : e.panelHint;
  return hint ? `${reason}. ${hint}` : `${reason}.`;
}

/** A hint from an older server or the network layer, unless it tells to run a CLI command. */
function withoutCommands(hint: string | undefined): string | undefined {
  return hint && !/`nbmci |NAME@N/.test(hint) ? hint : undefined;
}
