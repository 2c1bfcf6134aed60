import { Link } from '../components/Link';
import { paths, useDocumentTitle } from '../router';

export function NotFoundPage({ path }: { path: string }) {
  useDocumentTitle('Not found');
  return (
    <div className="empty">
      <h1>Nothing here</h1>
      <p className="muted">
        The dashboard has no page at <code>{path}</code>.
      </p>
      <Link to={paths.fleet()} className="btn btn-primary">
        Go to the fleet
      </Link>
    </div>
  );
}
