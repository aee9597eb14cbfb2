/*
 * tools/hmm-sim/driver_lines.ts - how many lines of driver code a design
 * asks for: the source lines of a glue file that are code, counted the
 * same way for every design (the design-debate table's last rows).
 *
 * A line counts when it is not blank, not inside or made only of a
 * comment, and not part of an import statement (imports say where names
 * come from, not what the driver does). This is the usual SLOC rule; the
 * GMEM RFC's claim ("a simulated GPU driver in under 70 lines besides MMU
 * functions") is compared with it, its MMU functions counted apart.
 *
 * The files are read from the source tree next to dist/ (the count is of
 * the TypeScript the reader sees, not of the compiled JavaScript).
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/**
 * sloc() - the code lines of @text (TypeScript or C-like): not blank, not
 * comment, not import.
 */
export function sloc(text: string): number {
  let n = 0, in_comment = false, in_import = false;
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (in_comment) {
      const end = line.indexOf('*/');
      if (end < 0) continue;
      in_comment = false;
      line = line.slice(end + 2).trim();
    }
    while (line.startsWith('/*')) {
      const end = line.indexOf('*/', 2);
      if (end < 0) { in_comment = true; line = ''; break; }
      line = line.slice(end + 2).trim();
    }
    if (line === '' || line.startsWith('//')) continue;
    if (in_import || /^import\b/.test(line) || /^export\s+(\{[^}]*\}|\*)\s+from\b/.test(line)) {
      in_import = !/from\s+['"][^'"]+['"];?$/.test(line) && !/^import\s+['"]/.test(line);
      continue;
    }
    n++;
  }
  return n;
}

/** The repository root: dist/tools/hmm-sim/ -> ../../../ */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * driver_lines() - the summed sloc() of @files (paths from the repository
 * root), or null when a file is not in this installation (a package
 * without sources).
 */
export function driver_lines(files: readonly string[]): number | null {
  let n = 0;
  for (const f of files) {
    const path = join(ROOT, f);
    if (!existsSync(path)) return null;
    n += sloc(readFileSync(path, 'utf8'));
  }
  return n;
}
