/**
 * The server-safe entry (`@wagate/web/server`): the types, the typed HTTP client and the formatting helpers,
 * with no React and no CSS, so a Next.js server action, route handler or server component can import it.
 * The components are in the main entry, which is marked "use client".
 */
export * from "./core/index";
