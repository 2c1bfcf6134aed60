// OS images: what is stored (kernels, models it boots, root size, default), running ingests with
// live progress (`event: progress` on the stream), and an upload form for admins.
import { useCallback, useEffect, useState } from 'react';
import { api, ApiError, asApiError, uploadImage, type IngestJob } from '../api';
import { ErrorBanner } from '../components/ErrorBanner';
import { dateTime, formatBytes } from '../format';
import { useLive, useStream } from '../live';
import { useDocumentTitle } from '../router';
import { useSession } from '../session';
import type { Image } from '../types';

const PHASES: Record<string, string> = {
  upload: 'Uploading', queued: 'Queued', decompress: 'Decompressing', partitions: 'Reading partitions', 'boot-files': 'Copying boot files',
  initramfs: 'Building initramfs', runtime: "Fetching the agent's Node.js runtime", rootfs: 'Squashing the root filesystem', store: 'Storing', done: 'Done', failed: 'Failed',
};

type ImageView = Image & { isDefault?: boolean };

/** An ingest, or the browser's own upload before the ingest exists (phase `upload`). */
type ProgressJob = Omit<IngestJob, 'phase'> & { phase: string };

function Progress({ job }: { job: ProgressJob }) {
  const pct = job.total ? Math.min(100, Math.round((100 * job.done) / job.total)) : null;
  const label = job.status === 'failed' ? `Failed: ${job.error?.code ?? ''} ${job.error?.message ?? ''}` : job.status === 'done' ? 'Done' : PHASES[job.phase] ?? job.phase;
  return (
    <div className="ingest" data-ingest={job.id} data-status={job.status}>
      <div className="ingest-head">
        <span className="mono">
          {job.name}:{job.tag}
        </span>
        <span className="muted"> from {job.source}</span>
      </div>
      <div className="ingest-bar" role="progressbar" aria-label={`${job.name}:${job.tag}`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct ?? undefined}>
        <div className={`ingest-fill ${job.status}`} style={{ width: `${job.status === 'done' ? 100 : pct ?? 5}%` }} />
      </div>
      <div className="ingest-label muted">
        {label}
        {pct !== null && job.status === 'running' ? ` — ${pct}%` : ''}
        {job.total && job.total > 1000 && job.status === 'running' ? ` (${formatBytes(job.done)} of ${formatBytes(job.total)})` : ''}
      </div>
    </div>
  );
}

export function ImagesPage() {
  useDocumentTitle('Images');
  const { session } = useSession();
  const { epoch } = useLive();
  const [images, setImages] = useState<ImageView[]>([]);
  const [jobs, setJobs] = useState<Map<string, IngestJob>>(new Map());
  const [error, setError] = useState<ApiError | null>(null);
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState('');
  const [upload, setUpload] = useState<{ sent: number; total: number } | null>(null);

  const load = useCallback(() => {
    api.get<{ items: ImageView[] }>('/images').then((r) => setImages(r.items), (e) => setError(asApiError(e)));
    api.get<{ items: IngestJob[] }>('/images/ingests').then((r) => setJobs(new Map(r.items.map((j) => [j.id, j]))), () => undefined);
  }, []);
  useEffect(load, [load, epoch]);

  useStream((m) => {
    if (m.kind === 'progress') {
      setJobs((prev) => new Map(prev).set(m.job.id, m.job));
      if (m.job.status === 'done') load();
    } else if (m.kind === 'event' && m.event.type.startsWith('image.')) load();
  });

  const submit = async () => {
    if (!file) return;
    setError(null);
    const base = name.trim() || file.name.replace(/\.(img\.xz|img\.gz|zip|img)$/i, '').toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
    try {
      const job = await uploadImage(file, { name: base, filename: file.name }, (sent, total) => setUpload({ sent, total }));
      setJobs((prev) => new Map(prev).set(job.id, job));
      setFile(null);
      setName('');
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setUpload(null);
    }
  };

  const running = [...jobs.values()].sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1));
  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Images</h1>
          <p className="muted page-sub">OS images devices boot from RAM: the root as a shared squashfs, Drover's initramfs per kernel.</p>
        </div>
      </div>
      <ErrorBanner error={error} onClose={() => setError(null)} />
      {session.role === 'admin' ? (
        <section className="card">
          <h2>Add an image</h2>
          <form
            className="form-row"
            onSubmit={(e) => {
              e.preventDefault();
              void submit();
            }}
          >
            <input className="input" type="file" aria-label="Image file" accept=".img,.xz,.gz,.zip" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
            <input className="input mono" aria-label="Name" placeholder="name[:tag] (from the file name)" value={name} onChange={(e) => setName(e.target.value)} />
            <button type="submit" className="btn btn-primary btn-sm" disabled={!file || upload !== null}>
              Upload
            </button>
          </form>
          {upload ? <Progress job={{ id: 'upload', name: name || file?.name || '', tag: '', source: 'this browser', status: 'running', phase: 'upload', done: upload.sent, total: upload.total, startedAt: '', finishedAt: null, imageId: null, error: null }} /> : null}
        </section>
      ) : null}
      {running.length ? (
        <section className="card" aria-label="Ingests">
          <h2>Ingests</h2>
          {running.map((j) => (
            <Progress key={j.id} job={j} />
          ))}
        </section>
      ) : null}
      <section className="card table-card">
        <div className="table-wrap">
          <table className="table" aria-label="Images">
            <thead>
              <tr>
                <th>Name</th>
                <th>Kind</th>
                <th>Kernels</th>
                <th>Boots</th>
                <th>Root</th>
                <th>Added</th>
              </tr>
            </thead>
            <tbody>
              {images.map((i) => {
                const m = i.metadata as { kernels?: ({ file: string; version: string } | string)[]; models?: string[]; rootfs?: { bytes: number }; osName?: string };
                return (
                  <tr key={i.id} data-image={`${i.name}:${i.tag}`}>
                    <td>
                      <span className="mono">
                        {i.name}:{i.tag}
                      </span>
                      {i.isDefault ? <span className="badge"> default</span> : null}
                      {m.osName ? <div className="muted">{m.osName}</div> : null}
                    </td>
                    <td>{i.kind}</td>
                    <td className="mono">{(m.kernels ?? []).map((k) => (typeof k === 'string' ? k : `${k.file} ${k.version}`)).join(', ')}</td>
                    <td>{(m.models ?? []).join(', ') || '—'}</td>
                    <td>{m.rootfs ? formatBytes(m.rootfs.bytes) : '—'}</td>
                    <td>{dateTime(i.createdAt)}</td>
                  </tr>
                );
              })}
              {images.length === 0 ? (
                <tr>
                  <td colSpan={6} className="muted">
                    No images yet{session.role === 'admin' ? ': upload a Raspberry Pi OS .img.xz above, or run drover image add FILE.' : '.'}
                  </td>
                </tr>
              ) : null}
            </tbody>
          </table>
        </div>
      </section>
    </div>
  );
}
