// Sign in with a user name and password (a session token), or paste an API token.
import { useState, type FormEvent } from 'react';
import { ApiError, asApiError, request, type Session } from '../api';
import { ErrorBanner } from '../components/ErrorBanner';
import { Logo } from '../components/Logo';
import { useDocumentTitle } from '../router';
import type { LoginReply, Me } from '../types';

export function LoginPage({ notice, onLogin }: { notice: string | null; onLogin: (s: Session) => void }) {
  useDocumentTitle('Sign in');
  const [mode, setMode] = useState<'password' | 'token'>('password');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === 'password') {
        const r = await request<LoginReply>('POST', '/auth/login', { body: { username: username.trim(), password }, token: null, noAuthRedirect: true });
        onLogin({ token: r.token, kind: 'password', name: r.user.username, role: r.user.role, expiresAt: r.expiresAt });
      } else {
        const secret = token.trim();
        const me = await request<Me>('GET', '/me', { token: secret, noAuthRedirect: true });
        if (me.role === 'device') {
          throw new ApiError(403, 'DROVER_AUTH_FORBIDDEN', 'This is a device token; it can only reach its own device.', 'Use an admin, operator or viewer token.');
        }
        onLogin({ token: secret, kind: 'token', name: me.name, role: me.role, expiresAt: null });
      }
    } catch (err) {
      setError(asApiError(err));
      setBusy(false);
    }
  }

  return (
    <div className="login-screen">
      <form className="login-card" onSubmit={submit} aria-label="Sign in">
        <div className="login-brand">
          <Logo size={36} />
          <div>
            <div className="login-title">Drover</div>
            <div className="muted small">Raspberry Pi fleet control</div>
          </div>
        </div>
        {notice ? (
          <div className="alert alert-info" role="status">
            {notice}
          </div>
        ) : null}
        <ErrorBanner error={error} />
        {mode === 'password' ? (
          <>
            <label className="field">
              <span>User name</span>
              <input name="username" autoComplete="username" autoFocus required value={username} onChange={(e) => setUsername(e.target.value)} />
            </label>
            <label className="field">
              <span>Password</span>
              <input name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
            </label>
          </>
        ) : (
          <label className="field">
            <span>API token</span>
            <input
              name="token"
              type="password"
              autoComplete="off"
              spellCheck={false}
              autoFocus
              required
              placeholder="drv_…"
              value={token}
              onChange={(e) => setToken(e.target.value)}
            />
            <small className="muted">Checked against the controller, then kept in this browser until you sign out.</small>
          </label>
        )}
        <button className="btn btn-primary btn-block" type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <button
          type="button"
          className="btn-link login-switch"
          onClick={() => {
            setMode(mode === 'password' ? 'token' : 'password');
            setError(null);
          }}
        >
          {mode === 'password' ? 'Use an API token instead' : 'Sign in with a user name and password'}
        </button>
      </form>
    </div>
  );
}
