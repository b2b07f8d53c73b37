/** True when this module is the script node was started with (`npx tsx examples/recipes/github.ts`). */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && new URL(url).pathname === new URL(`file://${process.argv[1]}`).pathname;
}
