// The element itself (for DOM.setFileInputFiles).
({ selector }) => R(selector)
