// Reference data every page needs to show names instead of ids: groups and images.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api } from './api';
import type { Group, Image } from './types';

interface Catalog {
  groups: Group[];
  images: Image[];
  groupName(id: string | null): string | null;
  imageName(id: string | null): string | null;
  reload(): void;
}

const CatalogContext = createContext<Catalog>({
  groups: [],
  images: [],
  groupName: (id) => id,
  imageName: (id) => id,
  reload: () => {},
});

export function imageLabel(i: Image): string {
  return `${i.name}:${i.tag}`;
}

export function CatalogProvider({ children }: { children: ReactNode }) {
  const [groups, setGroups] = useState<Group[]>([]);
  const [images, setImages] = useState<Image[]>([]);
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    let live = true;
    // Failures here are not worth a banner: pages fall back to showing ids.
    api.get<{ items: Group[] }>('/groups').then((r) => live && setGroups(r.items), () => {});
    api.get<{ items: Image[] }>('/images').then((r) => live && setImages(r.items), () => {});
    return () => {
      live = false;
    };
  }, [generation]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  const value = useMemo<Catalog>(() => {
    const g = new Map(groups.map((x) => [x.id, x.name]));
    const i = new Map(images.map((x) => [x.id, imageLabel(x)]));
    return {
      groups,
      images,
      groupName: (id) => (id ? (g.get(id) ?? id) : null),
      imageName: (id) => (id ? (i.get(id) ?? id) : null),
      reload,
    };
  }, [groups, images, reload]);
  return <CatalogContext.Provider value={value}>{children}</CatalogContext.Provider>;
}

export function useCatalog(): Catalog {
  return useContext(CatalogContext);
}
