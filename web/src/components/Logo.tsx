export function Logo({ size = 28 }: { size?: number }) {
  return (
    <svg width={size} height={size} viewBox="0 0 32 32" aria-hidden="true" className="logo">
      <rect width="32" height="32" rx="7" fill="#1f4e79" />
      <circle cx="11" cy="11" r="2.6" fill="#8fd3ff" />
      <circle cx="21" cy="11" r="2.6" fill="#fff" />
      <circle cx="11" cy="21" r="2.6" fill="#fff" />
      <circle cx="21" cy="21" r="2.6" fill="#7ee2a8" />
    </svg>
  );
}
