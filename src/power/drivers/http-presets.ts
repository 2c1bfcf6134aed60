// Request templates for plugs and relay boards whose HTTP API is fixed, so a config needs only
// `preset`, `host` and the relay index (`port`):
//   Shelly Gen1  GET /relay/N?turn=on|off → {"ison":true,...};  GET /relay/N
//   Shelly Gen2+ GET /rpc/Switch.Set?id=N&on=true|false → {"was_on":...};  GET /rpc/Switch.GetStatus?id=N → {"output":true,...}
//   Tasmota      GET /cm?cmnd=PowerN%20On|Off → {"POWER1":"ON"} (or "POWER" on one-relay devices);  GET /cm?cmnd=PowerN
// Where the device echoes the new state, expectBody checks it, so a plug that ignored the
// command (Tasmota without its password answers 200 with a WARNING) is a failure, not a success.
import type { HttpPresetName } from '../config.js';

export interface PresetRequest {
  url: string;
  expectBody?: string;
}

export interface Preset {
  /** {{port}} when the config has none: the first relay. */
  defaultPort: string;
  on: PresetRequest;
  off: PresetRequest;
  status: { url: string; onPattern: string; offPattern: string };
  /** How `auth` is sent: Basic header, query parameters (Tasmota), or not supported (digest). */
  auth: 'basic' | 'tasmota-query' | 'unsupported';
}

export function preset(name: HttpPresetName, scheme: 'http' | 'https', host: string): Preset {
  const base = `${scheme}://${host}`;
  switch (name) {
    case 'shelly-gen1':
      return {
        defaultPort: '0',
        on: { url: `${base}/relay/{{port}}?turn=on`, expectBody: '"ison"\\s*:\\s*true' },
        off: { url: `${base}/relay/{{port}}?turn=off`, expectBody: '"ison"\\s*:\\s*false' },
        status: { url: `${base}/relay/{{port}}`, onPattern: '"ison"\\s*:\\s*true', offPattern: '"ison"\\s*:\\s*false' },
        auth: 'basic',
      };
    case 'shelly-gen2':
      return {
        defaultPort: '0',
        on: { url: `${base}/rpc/Switch.Set?id={{port}}&on=true` },
        off: { url: `${base}/rpc/Switch.Set?id={{port}}&on=false` },
        status: { url: `${base}/rpc/Switch.GetStatus?id={{port}}`, onPattern: '"output"\\s*:\\s*true', offPattern: '"output"\\s*:\\s*false' },
        // Gen2 devices authenticate with HTTP digest (SHA-256), which this driver does not speak.
        auth: 'unsupported',
      };
    case 'tasmota':
      return {
        defaultPort: '1',
        on: { url: `${base}/cm?cmnd=Power{{port}}%20On`, expectBody: '"POWER\\d*"\\s*:\\s*"ON"' },
        off: { url: `${base}/cm?cmnd=Power{{port}}%20Off`, expectBody: '"POWER\\d*"\\s*:\\s*"OFF"' },
        status: { url: `${base}/cm?cmnd=Power{{port}}`, onPattern: '"POWER\\d*"\\s*:\\s*"ON"', offPattern: '"POWER\\d*"\\s*:\\s*"OFF"' },
        auth: 'tasmota-query',
      };
  }
}
