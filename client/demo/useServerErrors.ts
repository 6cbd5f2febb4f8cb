import { useEffect, useState } from 'react';

import type { ApiGatewayProvider, ServerError } from '../src/index.js';

/**
 * The errors the server sent on this page's connection (an `invalid_update`, a viewer's
 * `forbidden`, ...), newest last. The demo shows them: an edit the server refused must
 * not vanish silently.
 */
export function useServerErrors(provider: ApiGatewayProvider | null): readonly ServerError[] {
  const [errors, setErrors] = useState<readonly ServerError[]>([]);
  useEffect(() => {
    if (provider === null) return undefined;
    const onError = (error: ServerError) => setErrors((previous) => [...previous.slice(-4), error]);
    provider.on('server-error', onError);
    return () => provider.off('server-error', onError);
  }, [provider]);
  return errors;
}
