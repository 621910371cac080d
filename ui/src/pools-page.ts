/** Pools: sizes, slots in use, set and delete. */
import type { ApiPool } from '../../src/server/api-types.js';
import { api, enc } from './api.js';
import { clear, h } from './dom.js';
import type { View, ViewContext } from './view.js';

export function poolsPage({ root }: ViewContext): View {
  let disposed = false;
  const load = async () => {
    const { pools } = await api.get<{ pools: ApiPool[] }>('/pools');
    if (disposed) return;
    clear(root);
    const name = h('input', { type: 'text', placeholder: 'name', 'aria-label': 'pool name', required: true });
    const slots = h('input', { type: 'number', min: 0, placeholder: 'slots', 'aria-label': 'slots', required: true });
    const error = h('pre', { class: 'error', role: 'alert' });
    root.append(
      h('h1', {}, 'Pools'),
      h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, ...['pool', 'slots', 'in use', 'description', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, ...pools.map((p) => h('tr', {},
          h('td', {}, p.name), h('td', {}, p.slots), h('td', {}, p.usedSlots), h('td', {}, p.description ?? ''),
          h('td', {}, p.name === 'default_pool' ? null : h('button', { type: 'button', class: 'danger', onclick: async () => {
            if (!window.confirm(`Delete pool ${p.name}? Tasks naming it wait until it exists again.`)) return;
            await api.delete(`/pools/${enc(p.name)}`).catch((err: Error) => window.alert(err.message));
            void load();
          } }, 'Delete')),
        ))),
      ),
      h('form', { class: 'toolbar', onsubmit: async (e: Event) => {
        e.preventDefault();
        try {
          await api.put(`/pools/${enc(name.value)}`, { slots: Number(slots.value) });
          void load();
        } catch (err) {
          error.textContent = (err as Error).message;
        }
      } }, name, slots, h('button', { type: 'submit', class: 'primary' }, 'Set pool')),
      error,
    );
  };
  void load().catch((err: Error) => root.replaceChildren(h('pre', { class: 'error' }, err.message)));
  return { dispose: () => void (disposed = true) };
}
