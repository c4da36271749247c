// The accessibility check: axe-core's WCAG 2.0/2.1 A and AA rules on the page as it is, in the
// dark and the light theme, plus the structure rules a screen reader user relies on. A page's
// test calls `await expectAccessible(page)` once it shows its data; any violation fails the test
// with its rule, impact and target nodes.
import AxeBuilder from '@axe-core/playwright';
import type { Page, TestInfo } from '@playwright/test';
import { expect } from './stack';

export const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

/**
 * Rules switched off for every page, each with the reason. Empty: every page passes every
 * rule. An entry needs a reason a reviewer accepts (a false positive of axe, named), never
 * "it fails".
 */
export const EXCLUDED_RULES: Readonly<Record<string, string>> = {};

/**
 * axe's best-practice rules on how a page is built, which a screen reader user navigates by:
 * landmarks, one h1, headings in order, a working skip link, no positive tabindex, named
 * dialogs. Not WCAG failures by themselves, so checked as a rule list of their own (once per
 * page; colours do not change them).
 */
export const STRUCTURE_RULES = [
  'landmark-one-main',
  'landmark-no-duplicate-main',
  'landmark-no-duplicate-banner',
  'landmark-no-duplicate-contentinfo',
  'landmark-unique',
  'landmark-banner-is-top-level',
  'landmark-main-is-top-level',
  'landmark-complementary-is-top-level',
  'landmark-contentinfo-is-top-level',
  'region',
  'page-has-heading-one',
  'heading-order',
  'empty-heading',
  'empty-table-header',
  'skip-link',
  'tabindex',
  'aria-dialog-name'
];

export type Theme = 'dark' | 'light';

export interface AccessibleOptions {
  /** The themes to check, in this order (default: both). */
  themes?: Theme[];
  /** CSS selectors of regions to leave out, each with its reason (none is left out by default). */
  exclude?: Readonly<Record<string, string>>;
  /** Attach axe's full results to the test's report. */
  testInfo?: TestInfo;
}

interface AxeNode {
  target: unknown[];
  failureSummary?: string;
}
interface AxeViolation {
  id: string;
  impact?: string | null;
  help: string;
  helpUrl: string;
  nodes: AxeNode[];
}

/** A table row repeated 100 times is one fix: show a few of its nodes, not all. */
const MAX_NODES_SHOWN = 8;

/** One line per violation and one per node: rule, impact, target and what to fix. */
export function describeViolations(check: string, url: string, violations: AxeViolation[]): string {
  return violations
    .map((violation) => {
      const nodes = violation.nodes.slice(0, MAX_NODES_SHOWN).map((node) => {
        const target = node.target.map((part) => JSON.stringify(part)).join(' >> ');
        const why = (node.failureSummary ?? '').replace(/\s+/g, ' ').trim();
        return `    ${target}${why ? `\n      ${why}` : ''}`;
      });
      return [
        `[${check}] ${url}: ${violation.id} (${violation.impact ?? 'no impact given'}): ${violation.help}`,
        `  ${violation.helpUrl}`,
        ...nodes,
        ...(violation.nodes.length > MAX_NODES_SHOWN
          ? [
              `    ... and ${violation.nodes.length - MAX_NODES_SHOWN} more nodes (with testInfo, all are in the attached axe-${check}.json)`
            ]
          : [])
      ].join('\n');
    })
    .join('\n');
}

/**
 * Puts the page in a theme as the header's toggle does (`dark` class on <html>, `obt-theme` in
 * localStorage), without a click or a reload, so an open dialog or a filled form stays as it is.
 * ui.spec.ts checks the toggle itself.
 */
export async function useTheme(page: Page, theme: Theme): Promise<void> {
  await page.evaluate((wanted) => {
    document.documentElement.classList.toggle('dark', wanted === 'dark');
    localStorage.setItem('obt-theme', wanted);
  }, theme);
  // Colour transitions would let axe measure contrast halfway between the two themes. Only
  // finite animations end (a pulsing "Live" dot does not).
  await page.evaluate(() =>
    Promise.all(
      document
        .getAnimations()
        .filter((animation) => animation.effect?.getComputedTiming().iterations !== Infinity)
        .map((animation) => animation.finished.catch(() => undefined))
    )
  );
}

/**
 * Runs axe on the current page: the WCAG A/AA rules in each theme, then the structure rules once.
 * Fails on any violation, listing them all.
 */
export async function expectAccessible(page: Page, options: AccessibleOptions = {}): Promise<void> {
  const report: string[] = [];
  const run = async (check: string, builder: AxeBuilder): Promise<void> => {
    const excludedRules = Object.keys(EXCLUDED_RULES);
    if (excludedRules.length > 0) builder.disableRules(excludedRules);
    for (const selector of Object.keys(options.exclude ?? {})) builder.exclude(selector);
    const results = await builder.analyze();
    await options.testInfo?.attach(`axe-${check}.json`, {
      body: JSON.stringify(results, null, 2),
      contentType: 'application/json'
    });
    if (results.violations.length > 0) report.push(describeViolations(check, page.url(), results.violations));
  };
  for (const theme of options.themes ?? ['dark', 'light']) {
    await useTheme(page, theme);
    await run(theme, new AxeBuilder({ page }).withTags(WCAG_TAGS));
  }
  await run('structure', new AxeBuilder({ page }).withRules(STRUCTURE_RULES));
  expect(report, `axe found violations:\n${report.join('\n')}`).toEqual([]);
}
