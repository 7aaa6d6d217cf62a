// React from npm as one ES module for the hooks' test page (esbuild bundles it; React ships CommonJS).
import * as React from "react";
import { createRoot } from "react-dom/client";

export const {
  Fragment, createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState,
  useSyncExternalStore,
} = React;
export { createRoot };
export default React;
