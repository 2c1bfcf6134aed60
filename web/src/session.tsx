// Who is signed in, and what they may do.
import { createContext, useContext } from 'react';
import type { Session } from './api';

export interface SessionInfo {
  session: Session;
  /** admin and operator tokens may act on devices; viewers only read. */
  canOperate: boolean;
  logout(): void;
}

export const SessionContext = createContext<SessionInfo | null>(null);

export function useSession(): SessionInfo {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in page');
  return s;
}
