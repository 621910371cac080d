/**
 * The trigger dialog's form, generated from the DAG's params JSON Schema (draft 2020-12):
 * nested objects as fieldsets, arrays of scalars as rows to add and remove, enums as selects,
 * booleans as checkboxes, numbers with their bounds, strings with format date (a date input)
 * and date-time (a UTC date and time), defaults filled in, required fields marked, descriptions
 * as help text. Local `$ref`s (`#/$defs/...`) are followed; anything else (an array of objects,
 * `anyOf`, an object without `properties`) gets a small JSON box of its own.
 *
 * The form edits one value, the params object (`value`): every field writes its part of it,
 * and setting it (the raw JSON editor does, on every keystroke that parses) redraws every
 * field, so the two stay in step both ways. What a field cannot show (a value the raw JSON put
 * there) stays in the value until that field is edited.
 *
 * Initial value: the DAG's params, then the schema's defaults where those leave a gap (the
 * server's order), and an object for every required nested object. An optional nested object
 * appears when one of its fields is filled, and goes again when the last one is emptied.
 *
 * The server judges the params (as `kiln dags trigger --params` does); `showViolations` puts
 * each of its violations (`params.target.port: must be <= 65535`) next to the field it names.
 */
import { h } from './dom.js';
import { emptyItem, getAt, initialValue, isObject, keyOf, kindOf, newItem, pointer, SCALAR, setAt, type Kind, type Obj, type Schema, type Seg } from './params-schema.js';

/** A field of the form: what it shows comes from the value at its path. */
interface Field {
  /** The path as the API names it in a violation: `params.target.port`, `params.tables[1]`. */
  key: string;
  refresh(): void;
  /** Shows `message` (for `key` + `rest`, e.g. rest `[1]` for a row); returns what to focus. */
  showError(rest: string, message: string): HTMLElement;
  clearError(): void;
}

export class ParamsForm {
  readonly el = h('div', { class: 'params', 'data-testid': 'params-fields' });
  private model: Obj;
  private readonly fields: Field[] = [];
  private readonly ids = new Set<string>();
  /** Keys of the optional nested objects: emptied by a field, they go. */
  private readonly optionalObjects = new Set<string>();
  /** The nested objects' schemas by key: one made by a field's edit gets its defaults, as the server would give it. */
  private readonly objectSchemas = new Map<string, Schema>();
  private readonly root: Schema;

  constructor(schema: Record<string, unknown>, dagParams: Record<string, unknown>, private readonly changed: () => void) {
    this.root = schema as Schema;
    const top = this.resolve(schema);
    const start = initialValue(top, structuredClone(dagParams), true, (s) => this.resolve(s));
    this.model = isObject(start) ? start : {};
    if (kindOf(top) === 'object') this.buildProperties(this.el, top, []);
  }

  /** The params as the fields and the raw JSON have them (a copy). */
  get value(): Obj {
    return structuredClone(this.model);
  }

  /** New params (from the raw JSON): every field shows them. */
  set value(params: Obj) {
    this.model = structuredClone(params);
    for (const f of this.fields) f.refresh();
  }

  get hasFields(): boolean {
    return this.fields.length > 0;
  }

  clearErrors(): void {
    for (const f of this.fields) f.clearError();
  }

  /**
   * Puts each violation (`params.a.b: message`) next to the deepest field its path names, and
   * focuses the first of those fields; returns the violations no field names (an unknown
   * parameter, say).
   */
  showViolations(violations: string[]): string[] {
    this.clearErrors();
    const left: string[] = [];
    let first: HTMLElement | null = null;
    for (const v of violations) {
      const colon = v.indexOf(': ');
      const path = colon < 0 ? '' : v.slice(0, colon);
      const message = colon < 0 ? v : v.slice(colon + 2);
      let best: Field | null = null;
      for (const f of this.fields) {
        const under = path === f.key || path.startsWith(`${f.key}.`) || path.startsWith(`${f.key}[`);
        if (under && (best === null || f.key.length > best.key.length)) best = f;
      }
      if (best === null) left.push(v);
      else {
        const el = best.showError(path.slice(best.key.length), message);
        // The first in the form's order gets the focus.
        if (first === null || first.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_PRECEDING) first = el;
      }
    }
    first?.focus();
    return left;
  }

  // ---- building -----------------------------------------------------------------------------

  private buildProperties(into: HTMLElement, schema: Schema, path: Seg[]): void {
    const required = Array.isArray(schema.required) ? schema.required : [];
    for (const [name, raw] of Object.entries(schema.properties ?? {})) {
      const prop = this.resolve(raw);
      const at = [...path, name];
      const kind = kindOf(prop);
      const isRequired = required.includes(name);
      if (kind === 'object') into.append(this.objectField(name, prop, at, isRequired));
      else if (kind === 'array' && SCALAR.has(kindOf(this.resolve(prop.items)))) into.append(this.arrayField(name, prop, at, isRequired));
      else if (SCALAR.has(kind)) into.append(this.scalarField(name, prop, kind, at, isRequired));
      else into.append(this.jsonField(name, prop, at, isRequired));
    }
  }

  private objectField(name: string, schema: Schema, path: Seg[], required: boolean): HTMLElement {
    const key = keyOf(path);
    if (!required) this.optionalObjects.add(key);
    this.objectSchemas.set(key, schema);
    const error = h('div', { class: 'field-error', id: this.id(path, 'error') });
    const set = h('fieldset', { class: 'param-group', 'data-key': key, 'aria-describedby': error.id },
      h('legend', {}, name, required ? requiredMark() : null),
      help(schema),
      error,
    );
    this.fields.push({
      key,
      refresh: () => {},
      showError: (_rest, message) => {
        addError(error, message);
        return (set.querySelector('input, select, textarea') as HTMLElement | null) ?? set;
      },
      clearError: () => (error.textContent = ''),
    });
    this.buildProperties(set, schema, path);
    return set;
  }

  private scalarField(name: string, schema: Schema, kind: Kind, path: Seg[], required: boolean): HTMLElement {
    const key = keyOf(path);
    const id = this.id(path);
    const helpEl = help(schema, id);
    const error = h('div', { class: 'field-error', id: `${id}-error` });
    const control = scalarControl(schema, kind, required, () => getAt(this.model, path), (v) => this.set(path, v));
    const input = control.input;
    input.id = id;
    input.dataset.path = path.join('.');
    input.setAttribute('aria-describedby', [helpEl?.id, error.id].filter(Boolean).join(' '));
    if (required) input.setAttribute('aria-required', 'true');
    const label = h('label', { for: id }, name, required ? requiredMark() : null, kind === 'datetime' ? h('span', { class: 'muted' }, ' (UTC)') : null);
    const wrap = kind === 'boolean'
      ? h('div', { class: 'param check', 'data-key': key }, input, label, helpEl, error)
      : h('div', { class: 'param', 'data-key': key }, label, helpEl, input, error);
    this.fields.push({
      key,
      refresh: control.refresh,
      showError: (_rest, message) => {
        addError(error, message);
        input.setAttribute('aria-invalid', 'true');
        return input;
      },
      clearError: () => {
        error.textContent = '';
        input.removeAttribute('aria-invalid');
      },
    });
    return wrap;
  }

  private arrayField(name: string, schema: Schema, path: Seg[], required: boolean): HTMLElement {
    const key = keyOf(path);
    const items = this.resolve(schema.items);
    const kind = kindOf(items);
    const error = h('div', { class: 'field-error', id: this.id(path, 'error') });
    const list = h('ol', { class: 'array-rows', 'data-testid': `rows-${path.join('.')}` });
    const add = h('button', { type: 'button', class: 'add-row', 'data-testid': `add-${path.join('.')}`, onclick: () => addRow() }, `Add to ${name}`);
    const current = (): unknown[] => {
      const v = getAt(this.model, path);
      return Array.isArray(v) ? v : [];
    };
    const rowErrors: HTMLElement[] = [];
    const rowInputs: HTMLElement[] = [];
    const draw = () => {
      const values = current();
      rowErrors.length = 0;
      rowInputs.length = 0;
      list.replaceChildren(...values.map((_, i) => row(i, values.length)));
      add.disabled = schema.maxItems !== undefined && values.length >= schema.maxItems;
    };
    const row = (i: number, count: number): HTMLElement => {
      const id = this.id([...path, i]);
      const rowError = h('div', { class: 'field-error', id: `${id}-error` });
      const control = scalarControl(items, kind, true, () => current()[i], (v) => {
        const values = [...current()];
        values[i] = v === undefined ? emptyItem(kind) : v;
        this.set(path, values);
      });
      const input = control.input;
      input.id = id;
      input.dataset.path = `${path.join('.')}.${i}`;
      input.setAttribute('aria-label', `${name} item ${i + 1}`);
      input.setAttribute('aria-describedby', rowError.id);
      control.refresh();
      rowErrors.push(rowError);
      rowInputs.push(input);
      const remove = h('button', {
        type: 'button', class: 'remove-row', 'aria-label': `remove ${name} item ${i + 1}`, disabled: schema.minItems !== undefined && count <= schema.minItems,
        onclick: () => {
          const values = [...current()];
          values.splice(i, 1);
          this.set(path, values);
          draw();
          // Focus stays in the list: the row that took this one's place, else the add button.
          (rowInputs[Math.min(i, rowInputs.length - 1)] ?? add).focus();
        },
      }, 'Remove');
      return h('li', { 'data-index': i }, h('div', { class: 'row-line' }, input, remove), rowError);
    };
    const addRow = () => {
      this.set(path, [...current(), newItem(items, kind)]);
      draw();
      rowInputs[rowInputs.length - 1]?.focus();
    };
    draw();
    this.fields.push({
      key,
      refresh: draw,
      showError: (rest, message) => {
        const m = /^\[(\d+)\]/.exec(rest);
        const i = m ? Number(m[1]) : -1;
        if (i >= 0 && rowErrors[i] !== undefined) {
          addError(rowErrors[i], message);
          rowInputs[i]!.setAttribute('aria-invalid', 'true');
          return rowInputs[i]!;
        }
        addError(error, message);
        return rowInputs[0] ?? add;
      },
      clearError: () => {
        error.textContent = '';
        for (const e of rowErrors) e.textContent = '';
        for (const i of rowInputs) i.removeAttribute('aria-invalid');
      },
    });
    return h('fieldset', { class: 'param-group param-array', 'data-key': key, 'aria-describedby': error.id },
      h('legend', {}, name, required ? requiredMark() : null),
      help(schema),
      list,
      add,
      error,
    );
  }

  /** What the form cannot draw: its JSON, edited as text. */
  private jsonField(name: string, schema: Schema, path: Seg[], required: boolean): HTMLElement {
    const key = keyOf(path);
    const id = this.id(path);
    const error = h('div', { class: 'field-error', id: `${id}-error` });
    const helpEl = help(schema, id);
    const box = h('textarea', { id, class: 'json-field', spellcheck: 'false', 'data-path': path.join('.'), 'aria-describedby': [helpEl?.id, error.id].filter(Boolean).join(' ') });
    const refresh = () => {
      const v = getAt(this.model, path);
      box.value = v === undefined ? '' : JSON.stringify(v, null, 2);
    };
    box.addEventListener('input', () => {
      if (box.value.trim() === '') {
        error.textContent = '';
        this.set(path, undefined);
        return;
      }
      try {
        this.set(path, JSON.parse(box.value));
        error.textContent = '';
        box.removeAttribute('aria-invalid');
      } catch (err) {
        error.textContent = `not JSON: ${(err as Error).message}`;
        box.setAttribute('aria-invalid', 'true');
      }
    });
    refresh();
    this.fields.push({
      key,
      refresh,
      showError: (_rest, message) => {
        addError(error, message);
        box.setAttribute('aria-invalid', 'true');
        return box;
      },
      clearError: () => {
        error.textContent = '';
        box.removeAttribute('aria-invalid');
      },
    });
    return h('div', { class: 'param', 'data-key': key },
      h('label', { for: id }, name, required ? requiredMark() : null, h('span', { class: 'muted' }, ' (JSON)')),
      helpEl, box, error,
    );
  }

  // ---- the value ----------------------------------------------------------------------------

  /** A field changed: its part of the value (undefined: gone, and an optional object it emptied too). */
  private set(path: Seg[], value: unknown): void {
    let made = false;
    if (value !== undefined) {
      for (let i = 1; i < path.length; i++) {
        const parent = path.slice(0, i);
        const schema = this.objectSchemas.get(keyOf(parent));
        if (schema === undefined || isObject(getAt(this.model, parent))) continue;
        setAt(this.model, parent, initialValue(schema, undefined, true, (s) => this.resolve(s)));
        made = true;
      }
    }
    setAt(this.model, path, value);
    // The defaults of an object just made show in its other fields.
    if (made) for (const f of this.fields) if (f.key !== keyOf(path) && !f.key.startsWith(`${keyOf(path)}[`)) f.refresh();
    if (value === undefined) {
      for (let i = path.length - 1; i >= 1; i--) {
        const parent = path.slice(0, i);
        const v = getAt(this.model, parent);
        if (!this.optionalObjects.has(keyOf(parent)) || !isObject(v) || Object.keys(v).length > 0) break;
        setAt(this.model, parent, undefined);
      }
    }
    this.changed();
  }

  /** A schema with its local `$ref`s followed (siblings of a `$ref` kept, as 2020-12 does). */
  private resolve(schema: unknown): Schema {
    if (!isObject(schema)) return {};
    let s = schema as Schema;
    for (let depth = 0; typeof s.$ref === 'string' && depth < 20; depth++) {
      const target = pointer(this.root, s.$ref);
      if (!isObject(target)) break;
      const { $ref: _ref, ...rest } = s;
      s = { ...(target as Schema), ...rest };
    }
    return s;
  }

  /** A unique element id for a path: `param-target-port`. */
  private id(path: Seg[], suffix = ''): string {
    const base = `param-${path.join('-').replace(/[^A-Za-z0-9_-]/g, '_')}${suffix === '' ? '' : `-${suffix}`}`;
    let id = base;
    for (let n = 2; this.ids.has(id); n++) id = `${base}-${n}`;
    this.ids.add(id);
    return id;
  }
}

/** The API's ParamsError message lists one violation a line: `  params.limit: must be <= 100`. */
export function violationsOf(message: string, details?: unknown): string[] {
  const listed = isObject(details) ? details.violations : undefined;
  if (Array.isArray(listed) && listed.every((v) => typeof v === 'string')) return listed as string[];
  if (!/do not match its paramsSchema/.test(message)) return [];
  return message.split('\n').slice(1).map((l) => l.trim()).filter((l) => /^params\S*: /.test(l));
}

/** An input (or select) for one value, and how to show the value again. */
function scalarControl(schema: Schema, kind: Kind, required: boolean, get: () => unknown, set: (v: unknown) => void): { input: HTMLInputElement | HTMLSelectElement; refresh: () => void } {
  if (kind === 'enum') {
    const values = Array.isArray(schema.enum) ? schema.enum : [schema.const];
    const select = h('select', {},
      h('option', { value: '' }, required ? '(choose one)' : '(not set)'),
      ...values.map((v) => h('option', { value: JSON.stringify(v) }, v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v))),
    );
    let other: HTMLOptionElement | null = null;
    const refresh = () => {
      other?.remove();
      other = null;
      const v = get();
      const json = v === undefined ? '' : JSON.stringify(v);
      if (json !== '' && !values.some((x) => JSON.stringify(x) === json)) {
        // A value the raw JSON put there that is not one of the choices: shown as what it is.
        other = h('option', { value: json }, `${json} (not one of the choices)`);
        select.append(other);
      }
      select.value = json;
    };
    select.addEventListener('change', () => set(select.value === '' ? undefined : JSON.parse(select.value)));
    refresh();
    return { input: select, refresh };
  }
  if (kind === 'boolean') {
    const box = h('input', { type: 'checkbox' });
    const refresh = () => {
      const v = get();
      box.checked = v === true;
      // Not in the params yet: neither ticked nor not.
      box.indeterminate = v === undefined;
    };
    box.addEventListener('change', () => set(box.checked));
    refresh();
    return { input: box, refresh };
  }
  const input = h('input', { type: 'text' });
  let read: () => unknown = () => (input.value === '' ? undefined : input.value);
  let show: (v: unknown) => string = (v) => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v));
  if (kind === 'integer' || kind === 'number') {
    input.type = 'number';
    input.step = kind === 'integer' ? String(schema.multipleOf ?? 1) : schema.multipleOf !== undefined ? String(schema.multipleOf) : 'any';
    const min = schema.minimum ?? schema.exclusiveMinimum;
    const max = schema.maximum ?? schema.exclusiveMaximum;
    if (min !== undefined) input.min = String(min);
    if (max !== undefined) input.max = String(max);
    read = () => (input.value === '' ? undefined : Number(input.value));
    show = (v) => (typeof v === 'number' ? String(v) : '');
  } else if (kind === 'date') {
    input.type = 'date';
    show = (v) => (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v) ? v : '');
  } else if (kind === 'datetime') {
    input.type = 'datetime-local';
    input.step = '1';
    read = () => (input.value === '' ? undefined : `${input.value.length === 16 ? `${input.value}:00` : input.value}Z`);
    show = (v) => {
      if (typeof v !== 'string') return '';
      const t = Date.parse(v);
      return Number.isNaN(t) || !/T/.test(v) ? '' : new Date(t).toISOString().slice(0, 19);
    };
  } else {
    if (schema.format === 'email') input.type = 'email';
    else if (schema.format === 'uri') input.type = 'url';
    if (schema.maxLength !== undefined) input.maxLength = schema.maxLength;
  }
  // A default not in the params (an optional object's, until the object is made) shows as a hint.
  if (schema.default !== undefined && kind !== 'date' && kind !== 'datetime') input.placeholder = `${show(schema.default)} (default)`;
  const refresh = () => {
    input.value = show(get());
  };
  input.addEventListener('input', () => set(read()));
  refresh();
  return { input, refresh };
}

function help(schema: Schema, id?: string): HTMLElement | null {
  const parts = [schema.title, schema.description].filter((p): p is string => typeof p === 'string' && p !== '');
  const min = schema.minimum ?? schema.exclusiveMinimum;
  const max = schema.maximum ?? schema.exclusiveMaximum;
  if (min !== undefined || max !== undefined) {
    const lo = min === undefined ? '' : `${schema.exclusiveMinimum !== undefined && schema.minimum === undefined ? '>' : '≥'} ${min}`;
    const hi = max === undefined ? '' : `${schema.exclusiveMaximum !== undefined && schema.maximum === undefined ? '<' : '≤'} ${max}`;
    parts.push(`(${[lo, hi].filter(Boolean).join(', ')})`);
  }
  if (parts.length === 0) return null;
  return h('small', { class: 'help', id: id === undefined ? undefined : `${id}-help` }, parts.join(' '));
}

function requiredMark(): HTMLElement {
  return h('abbr', { class: 'req', title: 'required' }, '*');
}

function addError(el: HTMLElement, message: string): void {
  el.textContent = el.textContent === '' ? message : `${el.textContent}; ${message}`;
}

