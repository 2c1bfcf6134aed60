// Who may do what. Pure: the API's auth hook asks `allows` for every route.

export const ROLES = ['admin', 'operator', 'viewer', 'device'] as const;
export type Role = (typeof ROLES)[number];
/** Roles a person or tool can hold; `device` tokens are minted for one device only. */
export const PERSON_ROLES = ['admin', 'operator', 'viewer'] as const;
export type PersonRole = (typeof PERSON_ROLES)[number];

/**
 * What a route needs: `read` (viewer and up), `operate` (operator and up: devices, groups,
 * events), `admin` (tokens, users). `device-read` / `device-write` also admit a device token,
 * and the route then confines it to its own device (api/auth.ts assertDeviceScope).
 */
export type Permission = 'read' | 'operate' | 'admin' | 'device-read' | 'device-write';

const RANK: Record<PersonRole, number> = { viewer: 1, operator: 2, admin: 3 };
const NEEDS: Record<Permission, number> = { read: 1, operate: 2, admin: 3, 'device-read': 1, 'device-write': 2 };

export interface Principal {
  tokenId: string;
  role: Role;
  /** Set for device tokens: the only device this principal may touch. */
  deviceId: string | null;
  userId: string | null;
  name: string;
}

/** Whether a principal holds a permission. Device scoping of the target is checked by the route. */
export function allows(p: Principal, need: Permission): boolean {
  if (p.role === 'device') return need === 'device-read' || need === 'device-write';
  return RANK[p.role] >= NEEDS[need];
}
