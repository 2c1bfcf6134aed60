// The application shell: signed out → login; signed in → header, live stream and the pages.
import { useCallback, useEffect, useMemo, useState } from 'react';
import { loadSession, request, saveSession, setToken, setUnauthorizedHandler, type Session } from './api';
import { CatalogProvider } from './catalog';
import { forgetDeviceNames } from './events';
import { Layout } from './components/Layout';
import { LiveProvider } from './live';
import { DevicePage } from './pages/DevicePage';
import { EventsPage } from './pages/EventsPage';
import { FleetPage } from './pages/FleetPage';
import { ImagesPage } from './pages/ImagesPage';
import { LoginPage } from './pages/LoginPage';
import { NotFoundPage } from './pages/NotFoundPage';
import { matchRoute, navigate, useLocation } from './router';
import { SessionContext, type SessionInfo } from './session';

export function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  const [notice, setNotice] = useState<string | null>(null);
  const location = useLocation();
  const route = matchRoute(location.path);

  const signIn = useCallback((s: Session) => {
    saveSession(s);
    setToken(s.token);
    setNotice(null);
    setSession(s);
  }, []);

  const signOut = useCallback((message: string | null) => {
    saveSession(null);
    forgetDeviceNames();
    setToken(null);
    setSession(null);
    setNotice(message);
  }, []);

  useEffect(() => {
    setUnauthorizedHandler((err) => signOut(`You were signed out: ${err.code} — ${err.message}`));
  }, [signOut]);

  useEffect(() => {
    if (session && route.name === 'login') navigate('/', { replace: true });
  }, [session, route.name]);

  const info = useMemo<SessionInfo | null>(
    () =>
      session && {
        session,
        canOperate: session.role === 'admin' || session.role === 'operator',
        logout: () => {
          // Only a password session is revoked; a pasted API token lives on (logout would revoke it).
          if (session.kind === 'password') void request('POST', '/auth/logout', { body: {}, noAuthRedirect: true }).catch(() => {});
          signOut('Signed out.');
          navigate('/', { replace: true });
        },
      },
    [session, signOut],
  );

  if (!session || !info) return <LoginPage notice={notice} onLogin={signIn} />;

  return (
    <SessionContext.Provider value={info}>
      <LiveProvider key={session.token}>
        <CatalogProvider key={session.token}>
          <Layout route={route}>
            {route.name === 'fleet' || route.name === 'login' ? (
              <FleetPage query={location.query} />
            ) : route.name === 'device' ? (
              <DevicePage key={route.id} id={route.id} />
            ) : route.name === 'events' ? (
              <EventsPage query={location.query} />
            ) : route.name === 'images' ? (
              <ImagesPage />
            ) : (
              <NotFoundPage path={route.path} />
            )}
          </Layout>
        </CatalogProvider>
      </LiveProvider>
    </SessionContext.Provider>
  );
}
