/** The API's shapes as the gateway's OpenAPI document declares them (generated: ./schema.d.ts). */
import type { components } from "./schema";

export type Schemas = components["schemas"];
