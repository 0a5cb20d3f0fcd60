// The entry point the build bundles: the app's main module (mapped to "durable-app" by the
// bundler), which registers its functions, then the component's exports.

import "durable-app";

export { activity, entity, orchestrator, registry } from "./component.js";
