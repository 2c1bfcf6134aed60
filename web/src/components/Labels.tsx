export function LabelChips({ labels, onRemove, busy }: { labels: Record<string, string>; onRemove?: (key: string) => void; busy?: boolean }) {
  const entries = Object.entries(labels);
  if (entries.length === 0) return <span className="muted">—</span>;
  return (
    <span className="chips">
      {entries.map(([k, v]) => (
        <span className="chip" key={k} data-label={k}>
          <span className="chip-key">{k}</span>
          <span className="chip-value">{v}</span>
          {onRemove ? (
            <button type="button" className="chip-remove" aria-label={`Remove label ${k}`} title={`Remove ${k}`} disabled={busy} onClick={() => onRemove(k)}>
              ×
            </button>
          ) : null}
        </span>
      ))}
    </span>
  );
}
