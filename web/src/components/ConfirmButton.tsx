import { useEffect, useState, type ReactNode } from 'react';

/** A button that asks "sure?" in place before doing something destructive. */
export function ConfirmButton({
  children,
  confirmLabel,
  onConfirm,
  disabled,
  className = 'btn btn-danger',
}: {
  children: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  disabled?: boolean;
  className?: string;
}) {
  const [asking, setAsking] = useState(false);
  useEffect(() => {
    if (!asking) return;
    const t = setTimeout(() => setAsking(false), 4000);
    return () => clearTimeout(t);
  }, [asking]);
  return asking ? (
    <span className="confirm">
      <button type="button" className={className} disabled={disabled} onClick={() => { setAsking(false); onConfirm(); }}>
        {confirmLabel}
      </button>
      <button type="button" className="btn btn-ghost" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  ) : (
    <button type="button" className={className} disabled={disabled} onClick={() => setAsking(true)}>
      {children}
    </button>
  );
}
