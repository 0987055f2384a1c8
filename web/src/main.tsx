import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { preload } from "./lib/preload";
import "./style.css";

preload(); // the first API calls start before the first render

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
