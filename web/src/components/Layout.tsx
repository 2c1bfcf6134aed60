import type { ReactNode } from 'react';
import { useLive } from '../live';
import { paths, type Route } from '../router';
import { useSession } from '../session';
import { Link } from './Link';
import { Logo } from './Logo';

const STATUS_TEXT = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…' } as const;

export function Layout({ route, children }: { route: Route; children: ReactNode }) {
  const { session, logout } = useSession();
  const { status } = useLive();
  const name = session.name.replace(/^session:/, '');
  return (
    <div className="shell">
      <header className="topbar">
        <div className="topbar-inner">
          <Link to={paths.fleet()} className="brand">
            <Logo />
            <span>Drover</span>
          </Link>
          <nav className="nav" aria-label="Main">
            <Link to={paths.fleet()} className={route.name === 'fleet' || route.name === 'device' ? 'nav-link active' : 'nav-link'}>
              Fleet
            </Link>
            <Link to={paths.images()} className={route.name === 'images' ? 'nav-link active' : 'nav-link'}>
              Images
            </Link>
            <Link to={paths.events()} className={route.name === 'events' ? 'nav-link active' : 'nav-link'}>
              Events
            </Link>
          </nav>
          <div className="topbar-right">
            <span className={`live live-${status}`} data-live={status} title="Live updates from the controller">
              <span className="live-dot" />
              {STATUS_TEXT[status]}
            </span>
            <span className="whoami" title={session.kind === 'token' ? 'Signed in with an API token' : 'Signed in with a password'}>
              <span className="whoami-name">{name}</span>
              <span className="whoami-role">{session.role}</span>
            </span>
            <button type="button" className="btn btn-ghost btn-sm" onClick={logout}>
              Sign out
            </button>
          </div>
        </div>
      </header>
      <main className="content">{children}</main>
    </div>
  );
}
