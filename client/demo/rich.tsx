import { boot } from './boot.js';
import { RichApp } from './RichApp.js';

void boot('demo-rich', (name, config) => <RichApp name={name} config={config} />);
