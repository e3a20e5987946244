/* STN Lab's sketchpad: ready to draw on the first stroke.
 *
 * Gradio 6.31's Sketchpad opens with no tool selected ("select the draw tool to start") and
 * drops back to that state after "Clear canvas", so a first stroke draws nothing. Whenever
 * our sketchpad (#stn-sketch) shows that prompt, this script picks its brush, as a user
 * would with one click. It reads only what the page shows (the prompt, the "Brush" button),
 * so a Gradio that opens with the brush selected simply never triggers it.
 */
(() => {
  "use strict";
  const PROMPT = "select the draw tool";

  function pickBrush() {
    const pad = document.getElementById("stn-sketch");
    if (!pad || pad.offsetParent === null) return;  // not on screen (another tab)
    if (!pad.textContent.toLowerCase().includes(PROMPT)) return;
    const brush = pad.querySelector('button[aria-label="Brush"]');
    if (brush) brush.click();
  }

  setInterval(pickBrush, 300);
})();
