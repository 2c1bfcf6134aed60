// One live event stream per signed-in dashboard, shared by every page through context.
import { createContext, useCallback, useContext, useEffect, useLayoutEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { openEventStream, type StreamMessage, type StreamStatus } from './api';

type Listener = (m: StreamMessage) => void;

interface Live {
  status: StreamStatus;
  /** Bumped on every reconnection: changes may have been missed, so pages reload their data. */
  epoch: number;
  subscribe(l: Listener): () => void;
}

const LiveContext = createContext<Live>({ status: 'connecting', epoch: 0, subscribe: () => () => {} });

export function LiveProvider({ children }: { children: ReactNode }) {
  const listeners = useRef(new Set<Listener>());
  const [status, setStatus] = useState<StreamStatus>('connecting');
  const [epoch, setEpoch] = useState(0);

  useEffect(
    () =>
      openEventStream({
        message: (m) => {
          for (const l of listeners.current) l(m);
        },
        status: setStatus,
        connected: (reconnect) => {
          if (reconnect) setEpoch((e) => e + 1);
        },
      }),
    [],
  );

  const subscribe = useCallback((l: Listener) => {
    listeners.current.add(l);
    return () => {
      listeners.current.delete(l);
    };
  }, []);
  const value = useMemo<Live>(() => ({ status, epoch, subscribe }), [status, epoch, subscribe]);
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

export function useLive(): Live {
  return useContext(LiveContext);
}

/** Calls `fn` for every stream message while the component is mounted (always the latest `fn`). */
export function useStream(fn: Listener): void {
  const { subscribe } = useLive();
  const ref = useRef(fn);
  useLayoutEffect(() => {
    ref.current = fn;
  });
  useEffect(() => subscribe((m) => ref.current(m)), [subscribe]);
}

/**
 * A stream of one device's own messages, open while the component is mounted and `enabled`:
 * live metric samples travel only on a device-scoped stream (a fleet-wide one would carry every
 * heartbeat). `onConnected(reconnect)` runs on each connection; after a gap samples may be missing.
 */
export function useDeviceStream(deviceId: string, enabled: boolean, fn: Listener, onConnected?: (reconnect: boolean) => void): StreamStatus | null {
  const ref = useRef(fn);
  const connectedRef = useRef(onConnected);
  useLayoutEffect(() => {
    ref.current = fn;
    connectedRef.current = onConnected;
  });
  const [status, setStatus] = useState<StreamStatus | null>(null);
  useEffect(() => {
    if (!enabled) {
      setStatus(null);
      return;
    }
    return openEventStream(
      {
        message: (m) => ref.current(m),
        status: setStatus,
        connected: (reconnect) => connectedRef.current?.(reconnect),
      },
      { device: deviceId },
    );
  }, [deviceId, enabled]);
  return status;
}
