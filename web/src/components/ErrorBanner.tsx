import type { ApiError } from '../api';

/** Shows an API error as the catalogue gives it: code, message and how to fix it. */
export function ErrorBanner({ error, onClose }: { error: ApiError | null; onClose?: () => void }) {
  if (!error) return null;
  return (
    <div className="alert alert-error" role="alert">
      <div className="alert-body">
        <code className="alert-code">{error.code}</code>
        <span className="alert-message">{error.message}</span>
        {error.fix ? <div className="alert-fix">{error.fix}</div> : null}
      </div>
      {onClose ? (
        <button type="button" className="alert-close" aria-label="Dismiss" onClick={onClose}>
          ×
        </button>
      ) : null}
    </div>
  );
}
