// A shared clock that ticks once a second while anything is subscribed ("12 s ago" labels).
import { readable, type Readable } from 'svelte/store';

export const now: Readable<number> = readable(Date.now(), (set) => {
  set(Date.now());
  const id = setInterval(() => set(Date.now()), 1000);
  return () => clearInterval(id);
});
