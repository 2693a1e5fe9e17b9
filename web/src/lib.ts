/** The library entry: the framework-free core and the React bindings. CSS: `dist-lib/style.css`. */
import "./react/styles.css";
export * from "./core/index";
export * from "./react/index";
