// How each client status is named, coloured and iconised. Text always accompanies colour.
import type { Status } from './api/schemas';
import { STATUSES } from './api/schemas';

export interface StatusStyle {
  label: string;
  /** One-line meaning, used as a tooltip and in the legend. */
  description: string;
  /** Classes for the badge (background, text, ring) in light and dark mode. */
  badge: string;
  /** Class for a small solid dot or bar. */
  dot: string;
  /** A glyph that differs by status, so the badge reads without colour. */
  icon: 'check' | 'warning' | 'cross' | 'stop' | 'question' | 'archive';
}

export const STATUS_STYLES: Record<Status, StatusStyle> = {
  online: {
    label: 'online',
    description: 'Heartbeats arriving and Ollama reachable',
    badge:
      'bg-emerald-100 text-emerald-800 ring-emerald-600/30 dark:bg-emerald-500/15 dark:text-emerald-300 dark:ring-emerald-400/30',
    dot: 'bg-emerald-500',
    icon: 'check'
  },
  degraded: {
    label: 'degraded',
    description: 'Heartbeats arriving but Ollama is down, missing or erroring',
    badge:
      'bg-amber-100 text-amber-800 ring-amber-600/30 dark:bg-amber-500/15 dark:text-amber-300 dark:ring-amber-400/30',
    dot: 'bg-amber-500',
    icon: 'warning'
  },
  offline: {
    label: 'offline',
    description: 'No heartbeat for longer than the timeout',
    badge:
      'bg-red-100 text-red-800 ring-red-600/30 dark:bg-red-500/15 dark:text-red-300 dark:ring-red-400/30',
    dot: 'bg-red-500',
    icon: 'cross'
  },
  stopped: {
    label: 'stopped',
    description: 'The agent shut down cleanly and deregistered',
    badge:
      'bg-slate-200 text-slate-800 ring-slate-500/30 dark:bg-slate-500/20 dark:text-slate-200 dark:ring-slate-400/30',
    dot: 'bg-slate-400',
    icon: 'stop'
  },
  unknown: {
    label: 'unknown',
    description: 'The OBT server itself was not running',
    badge:
      'bg-violet-100 text-violet-800 ring-violet-600/30 dark:bg-violet-500/15 dark:text-violet-300 dark:ring-violet-400/30',
    dot: 'bg-violet-400',
    icon: 'question'
  },
  decommissioned: {
    label: 'decommissioned',
    description: 'Removed from the fleet by an admin',
    badge:
      'bg-gray-100 text-gray-600 ring-gray-500/20 dark:bg-gray-700/40 dark:text-gray-400 dark:ring-gray-500/30',
    dot: 'bg-gray-500',
    icon: 'archive'
  }
};

/** Worst first: the order used for counts and for sorting by status. */
export const STATUS_ORDER: readonly Status[] = [
  'offline',
  'degraded',
  'unknown',
  'online',
  'stopped',
  'decommissioned'
];

export const ALL_STATUSES = STATUSES;
