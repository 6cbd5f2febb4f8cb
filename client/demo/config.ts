/**
 * The local stack's answer to GET /config.json?name=NAME: where to connect and a token
 * for that user. Fetched again for every (re)connect, which is how the demo refreshes tokens.
 */

export interface DemoConfig {
  wsUrl: string;
  sceneId: string;
  token: string;
  userName: string;
}

export async function fetchConfig(name: string): Promise<DemoConfig> {
  const response = await fetch(`/config.json?name=${encodeURIComponent(name)}`, { cache: 'no-store' });
  if (!response.ok) throw new Error(`/config.json answered ${response.status}`);
  const config = (await response.json()) as Partial<DemoConfig>;
  for (const field of ['wsUrl', 'sceneId', 'token'] as const) {
    if (typeof config[field] !== 'string' || config[field] === '') {
      throw new Error(`/config.json has no '${field}'`);
    }
  }
  return { ...(config as DemoConfig), userName: config.userName ?? name };
}
