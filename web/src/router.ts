// A tiny path router on the History API. The controller answers every non-API path with
// index.html, so /devices/dev_… and /events can be bookmarked and reloaded.
import { useEffect, useSyncExternalStore, type MouseEvent } from 'react';

const listeners = new Set<() => void>();
const notify = () => {
  for (const l of listeners) l();
};
window.addEventListener('popstate', notify);

function subscribe(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

const snapshot = () => window.location.pathname + window.location.search;

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (to === snapshot()) return;
  if (opts.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  notify();
  if (!opts.replace) window.scrollTo(0, 0);
}

export interface Location {
  path: string;
  query: URLSearchParams;
}

export function useLocation(): Location {
  const s = useSyncExternalStore(subscribe, snapshot);
  const i = s.indexOf('?');
  return { path: i < 0 ? s : s.slice(0, i), query: new URLSearchParams(i < 0 ? '' : s.slice(i)) };
}

export type Route =
  | { name: 'fleet' }
  | { name: 'device'; id: string }
  | { name: 'events' }
  | { name: 'images' }
  | { name: 'login' }
  | { name: 'not-found'; path: string };

export function matchRoute(path: string): Route {
  if (path === '/' || path === '') return { name: 'fleet' };
  if (path === '/login') return { name: 'login' };
  if (path === '/events') return { name: 'events' };
  if (path === '/images') return { name: 'images' };
  const m = /^\/devices\/([^/]+)\/?$/.exec(path);
  if (m) return { name: 'device', id: decodeURIComponent(m[1]!) };
  return { name: 'not-found', path };
}

export const paths = {
  fleet: (query?: Record<string, string>) => {
    const q = new URLSearchParams(Object.entries(query ?? {}).filter(([, v]) => v !== '')).toString();
    return q ? `/?${q}` : '/';
  },
  device: (id: string) => `/devices/${encodeURIComponent(id)}`,
  events: () => '/events',
  images: () => '/images',
  login: () => '/login',
};

/** onClick for <a href>: client-side navigation for plain left clicks, browser default otherwise. */
export function linkHandler(to: string) {
  return (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
}

export function useDocumentTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Drover` : 'Drover';
  }, [title]);
}
