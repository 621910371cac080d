/** Modal dialogs: the trigger form (generated from the DAG's params schema, raw JSON too) and the dry-run confirmation. */
import type { ApiDag } from '../../src/server/api-types.js';
import { api, enc } from './api.js';
import { clear, h } from './dom.js';

interface SchemaProp {
  type?: string | string[];
  enum?: unknown[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
}

/** Opens the trigger dialog; resolves with the new run's id, or null if cancelled. */
export function triggerDialog(dialog: HTMLDialogElement, dag: ApiDag): Promise<string | null> {
  clear(dialog);
  const props = (dag.paramsSchema?.properties ?? {}) as Record<string, SchemaProp>;
  const fields = new Map<string, { input: HTMLInputElement | HTMLSelectElement; prop: SchemaProp }>();
  const form = h('form', { method: 'dialog', 'data-testid': 'trigger-form' }, h('h2', {}, `Trigger ${dag.dagId}`));
  for (const [name, prop] of Object.entries(props)) {
    const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== 'null') : prop.type;
    const initial = prop.default ?? dag.params[name];
    let input: HTMLInputElement | HTMLSelectElement;
    if (prop.enum) {
      input = h('select', { name }, h('option', { value: '' }, '(default)'), ...prop.enum.map((v) => h('option', { value: JSON.stringify(v), selected: v === initial }, String(v))));
    } else if (type === 'boolean') {
      input = h('input', { type: 'checkbox', name, checked: initial === true });
    } else {
      input = h('input', { type: type === 'integer' || type === 'number' ? 'number' : 'text', name, value: initial === undefined ? '' : String(initial), step: type === 'integer' ? 1 : type === 'number' ? 'any' : undefined, min: prop.minimum, max: prop.maximum });
    }
    fields.set(name, { input, prop: { ...prop, type } });
    form.append(h('label', { for: `param-${name}` }, name, prop.description ? h('span', { class: 'muted' }, ` ${prop.description}`) : null));
    input.id = `param-${name}`;
    form.append(input);
  }
  const raw = h('textarea', { name: 'raw', placeholder: '{"key": "value"} (used instead of the fields when not empty)', 'aria-label': 'params as raw JSON' });
  const runId = h('input', { type: 'text', name: 'runId', placeholder: 'default manual__<time>', id: 'trigger-run-id' });
  const error = h('pre', { class: 'error', role: 'alert' });
  form.append(
    h('label', { for: 'trigger-raw' }, 'Params as raw JSON'), Object.assign(raw, { id: 'trigger-raw' }),
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
      let params: Record<string, unknown> | undefined;
      try {
        params = raw.value.trim() !== '' ? (JSON.parse(raw.value) as Record<string, unknown>) : fromFields(fields);
      } catch (err) {
        error.textContent = `params: ${(err as Error).message}`;
        return;
      }
      submit.disabled = true;
      try {
        const res = await api.post<{ run: { runId: string } }>(`/dags/${enc(dag.dagId)}/runs`, { params, runId: runId.value.trim() || undefined });
        done(res.run.runId);
      } catch (err) {
        error.textContent = (err as Error).message;
      } finally {
        submit.disabled = false;
      }
    });
    dialog.onclose = () => resolve(null);
    dialog.append(form);
    dialog.showModal();
  });
}

function fromFields(fields: Map<string, { input: HTMLInputElement | HTMLSelectElement; prop: SchemaProp }>): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const [name, { input, prop }] of fields) {
    if (input instanceof HTMLInputElement && input.type === 'checkbox') params[name] = input.checked;
    else if (input.value === '') continue;
    else if (input instanceof HTMLSelectElement) params[name] = JSON.parse(input.value);
    else if (prop.type === 'integer' || prop.type === 'number') params[name] = Number(input.value);
    else params[name] = input.value;
  }
  return params;
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
