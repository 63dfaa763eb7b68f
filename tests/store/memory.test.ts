import { MemoryStore } from "../../src/store/memory.ts";
import { storeContract } from "./contract.ts";

storeContract(
  "memory",
  () => Promise.resolve({ store: new MemoryStore(), cleanup: () => Promise.resolve() }),
);
