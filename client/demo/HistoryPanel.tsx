import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';

import type { ApiGatewayProvider, VersionEvent, VersionInfo } from '../src/index.js';
import { errorText, useVersions } from './useVersions.js';
import { versionsApi } from './versionsApi.js';

interface HistoryPanelProps {
  /** The stage's HTTP API; null when the page's config names none (no panel then). */
  httpUrl: string | null;
  sceneId: string;
  getToken: () => Promise<string>;
  provider: ApiGatewayProvider | null;
  /** The Y.Text root a preview shows. */
  textRoot: string;
  /** A viewer may list and preview versions, not save or restore them. */
  readOnly: boolean;
}

interface Preview {
  version: VersionInfo;
  text: string | null;
}

const LABEL_LIMIT = 200; // the HTTP API's

export function versionTitle(version: VersionInfo): string {
  return version.label || (version.auto ? '(automatic)' : '(no label)');
}

function when(createdAt: string): string {
  const date = new Date(createdAt);
  return Number.isNaN(date.getTime()) ? createdAt : date.toLocaleString([], { dateStyle: 'short', timeStyle: 'medium' });
}

function announcement(event: VersionEvent | null): string | null {
  if (event?.event !== 'restored') return null;
  return `Restored “${versionTitle(event.version)}”; the scene before it was saved as an automatic version.`;
}

/**
 * The scene's version history: save one with a label, list them newest first (updated for
 * every member by the server's `version` message), preview one's text, restore one.
 */
export function HistoryPanel({ httpUrl, sceneId, getToken, provider, textRoot, readOnly }: HistoryPanelProps) {
  const api = useMemo(
    () => (httpUrl === null ? null : versionsApi(httpUrl, sceneId, getToken)),
    [httpUrl, sceneId, getToken],
  );
  const { versions, error: listError, lastEvent } = useVersions(api, provider);
  const [label, setLabel] = useState('');
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [preview, setPreview] = useState<Preview | null>(null);
  if (api === null) return null;

  async function run(what: string, action: () => Promise<void>) {
    setBusy(true);
    setActionError(null);
    try {
      await action();
    } catch (cause) {
      setActionError(`Could not ${what}: ${errorText(cause)}`);
    } finally {
      setBusy(false);
    }
  }

  const save = (event: FormEvent) => {
    event.preventDefault();
    void run('save a version', async () => {
      await api.save(label.trim());
      setLabel('');
    });
  };
  const restore = (version: VersionInfo) =>
    void run('restore', async () => {
      setConfirming(null);
      await api.restore(version.versionId);
    });
  const show = (version: VersionInfo) =>
    void run('load the version', async () => {
      setPreview({ version, text: await api.text(version.versionId, textRoot) });
    });

  const notice = announcement(lastEvent);
  const error = actionError ?? listError;
  return (
    <section className="history" aria-labelledby="history-heading">
      <h2 id="history-heading">History</h2>
      {!readOnly && (
        <form className="save-version" onSubmit={save}>
          <input
            aria-label="Version label"
            placeholder="Label (optional)"
            maxLength={LABEL_LIMIT}
            value={label}
            onChange={(event) => setLabel(event.target.value)}
          />
          <button type="submit" disabled={busy}>
            Save version
          </button>
        </form>
      )}
      {notice !== null && (
        <p className="history-notice" role="status">
          {notice}
        </p>
      )}
      {error !== null && (
        <p className="history-error" role="alert">
          {error}
        </p>
      )}
      {versions.length === 0 ? (
        <p className="history-empty">No versions yet.</p>
      ) : (
        <ol className="versions" aria-label="Versions, newest first">
          {versions.map((version) => (
            <li key={version.versionId} data-version-id={version.versionId}>
              <span className="version-label">
                {versionTitle(version)}
                {version.auto && version.label !== '' && <span className="auto"> auto</span>}
              </span>
              <span className="version-meta">
                <time dateTime={version.createdAt}>{when(version.createdAt)}</time> · by {version.createdBy}
              </span>
              {confirming === version.versionId ? (
                <span className="version-actions confirm">
                  Restore this version?
                  <button type="button" disabled={busy} onClick={() => restore(version)}>
                    Yes, restore
                  </button>
                  <button type="button" onClick={() => setConfirming(null)}>
                    Cancel
                  </button>
                </span>
              ) : (
                <span className="version-actions">
                  <button type="button" disabled={busy} onClick={() => show(version)}>
                    Preview
                  </button>
                  {!readOnly && (
                    <button type="button" disabled={busy} onClick={() => setConfirming(version.versionId)}>
                      Restore
                    </button>
                  )}
                </span>
              )}
            </li>
          ))}
        </ol>
      )}
      {preview !== null && <VersionPreview preview={preview} onClose={() => setPreview(null)} />}
    </section>
  );
}

/** One version's text, read-only, in a modal dialog (Escape closes it too). */
function VersionPreview({ preview, onClose }: { preview: Preview; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const element = dialog.current;
    if (element !== null && !element.open) element.showModal();
  }, []);
  const { version, text } = preview;
  return (
    <dialog ref={dialog} className="version-preview" aria-labelledby="version-preview-title" onClose={onClose}>
      <h2 id="version-preview-title">{versionTitle(version)}</h2>
      <p className="version-meta">
        <time dateTime={version.createdAt}>{when(version.createdAt)}</time> · by {version.createdBy} · read-only
      </p>
      {text === null ? (
        <p className="history-empty">This version has no text.</p>
      ) : (
        <pre className="version-text">{text}</pre>
      )}
      <form method="dialog">
        <button type="submit">Close</button>
      </form>
    </dialog>
  );
}
