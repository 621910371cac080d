/** Modal dialogs: the trigger form (generated from the DAG's params schema, raw JSON too) and the dry-run confirmation. */
import type { ApiDag } from '../../src/server/api-types.js';
import { api, ApiFailure, enc } from './api.js';
import { clear, h } from './dom.js';
import { ParamsForm, violationsOf } from './params-form.js';

/**
 * Opens the trigger dialog; resolves with the new run's id, or null if cancelled. The form
 * (params-form.ts) and the raw JSON below it edit the same params; the server checks them, and
 * a violation it reports shows next to the field it names.
 */
export function triggerDialog(dialog: HTMLDialogElement, dag: ApiDag): Promise<string | null> {
  clear(dialog);
  const raw = h('textarea', { id: 'trigger-raw', name: 'raw', class: 'raw-json', spellcheck: 'false', 'data-testid': 'params-raw', 'aria-describedby': 'trigger-raw-error' });
  const rawError = h('div', { class: 'field-error', id: 'trigger-raw-error' });
  const showRaw = () => {
    raw.value = JSON.stringify(fields.value, null, 2);
    rawError.textContent = '';
    raw.removeAttribute('aria-invalid');
  };
  const fields = new ParamsForm(dag.paramsSchema ?? {}, dag.params, showRaw);
  showRaw();
  raw.addEventListener('input', () => {
    try {
      const parsed: unknown = JSON.parse(raw.value.trim() === '' ? '{}' : raw.value);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the params must be a JSON object');
      fields.value = parsed as Record<string, unknown>;
      rawError.textContent = '';
      raw.removeAttribute('aria-invalid');
    } catch (err) {
      rawError.textContent = `not used until it parses: ${(err as Error).message}`;
      raw.setAttribute('aria-invalid', 'true');
    }
  });
  const runId = h('input', { type: 'text', name: 'runId', placeholder: 'default manual__<time>', id: 'trigger-run-id' });
  const error = h('pre', { class: 'error', role: 'alert', 'data-testid': 'trigger-error' });
  const form = h('form', { method: 'dialog', novalidate: true, 'data-testid': 'trigger-form' },
    h('h2', {}, `Trigger ${dag.dagId}`),
    fields.hasFields ? fields.el : h('p', { class: 'muted' }, dag.paramsSchema ? 'The params schema has no properties to make fields of: write the params as JSON.' : 'This DAG has no params schema: any JSON object.'),
    h('label', { for: 'trigger-raw' }, 'Params as JSON', fields.hasFields ? h('span', { class: 'muted' }, ' (in step with the fields)') : null),
    raw, rawError,
    h('label', { for: 'trigger-run-id' }, 'Run id'), runId, error,
  );
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', onclick: () => done(null) }, 'Cancel');
    const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'trigger-submit' }, 'Trigger');
    form.append(h('div', { class: 'actions' }, cancel, submit));
    const done = (value: string | null) => {
      dialog.close();
      resolve(value);
    };
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.textContent = '';
      fields.clearErrors();
      if (raw.getAttribute('aria-invalid') === 'true') {
        error.textContent = `params: ${rawError.textContent}`;
        raw.focus();
        return;
      }
      submit.disabled = true;
      try {
        const res = await api.post<{ run: { runId: string } }>(`/dags/${enc(dag.dagId)}/runs`, { params: fields.value, runId: runId.value.trim() || undefined });
        done(res.run.runId);
      } catch (err) {
        const violations = err instanceof ApiFailure && err.status === 400 ? violationsOf(err.message, err.details) : [];
        if (violations.length > 0) {
          const left = fields.showViolations(violations);
          error.textContent = left.length === 0 ? 'The params do not match the DAG\'s schema: see the marked fields.' : `The params do not match the DAG's schema:\n${left.join('\n')}`;
        } else error.textContent = (err as Error).message;
      } finally {
        submit.disabled = false;
      }
    });
    dialog.onclose = () => resolve(null);
    dialog.append(form);
    dialog.showModal();
  });
}

/**
 * Shows what an action would change (its dry run) and asks to go on. Resolves true when
 * confirmed. Nothing changes before that.
 */
export function confirmDialog(dialog: HTMLDialogElement, title: string, lines: string[], notes: string[] = []): Promise<boolean> {
  clear(dialog);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      dialog.onclose = null;
      dialog.close();
      resolve(ok);
    };
    const empty = lines.length === 0;
    dialog.append(
      h('form', { method: 'dialog', 'data-testid': 'confirm-dialog' },
        h('h2', {}, title),
        empty ? h('p', {}, 'Nothing would change.') : h('p', {}, 'These task instances would change:'),
        h('ul', { 'data-testid': 'dry-run-list' }, ...lines.map((l) => h('li', {}, l))),
        ...notes.map((n) => h('p', { class: 'muted' }, n)),
        h('div', { class: 'actions' },
          h('button', { type: 'button', onclick: () => done(false) }, 'Cancel'),
          empty ? null : h('button', { type: 'button', class: 'primary', 'data-testid': 'confirm', onclick: () => done(true) }, 'Confirm'),
        ),
      ),
    );
    dialog.onclose = () => resolve(false);
    dialog.showModal();
  });
}
