import { App } from './App.js';
import { boot } from './boot.js';

// The screenplay page; devstack/demo.py seeds this scene with a sample in Fountain.
void boot('demo-scene', (name, config) => <App name={name} config={config} />);
