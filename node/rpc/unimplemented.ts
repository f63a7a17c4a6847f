/**
 * Fills the methods a service implementation leaves out with handlers that answer
 * UNIMPLEMENTED, so an unsupported call is always an explicit error, never a silent success.
 */
import type { CompatServiceDefinition, ServiceImplementation } from "nice-grpc";
import { ServerError, Status } from "nice-grpc-common";

/** `impl` completed with UNIMPLEMENTED handlers for every method of `definition` it lacks. */
export function withUnimplemented<D extends CompatServiceDefinition>(
  definition: D,
  impl: Partial<ServiceImplementation<D>>,
): ServiceImplementation<D> {
  const full: Record<string, unknown> = { ...impl };
  for (const [name, m] of Object.entries(definition)) {
    if (name in full) continue;
    const method = m as { path: string; responseStream: boolean };
    const error = () =>
      new ServerError(Status.UNIMPLEMENTED, `${method.path} is not implemented by this node`);
    full[name] = method.responseStream
      // deno-lint-ignore require-yield
      ? async function* () {
        throw error();
      }
      : () => Promise.reject(error());
  }
  return full as ServiceImplementation<D>;
}
